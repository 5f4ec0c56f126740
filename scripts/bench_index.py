"""The vector index at scale: build time, memory, single-query latency and recall@10 per kind.

Usage: python scripts/bench_index.py [--quick] [--out DIR] [--sizes 10000,100000,1000000]

For each catalog size (10k, 100k, 1M; --quick: 5k and 20k) it builds every index kind the shop
offers through the product's own code (``recommender.index.build_index``): exact (flat),
HNSW and IVF-flat, plus IVF-PQ for reference (not offered: its recall@10 stays below 0.95).
It measures build (and training) time on all cores, the serialised index size, single-query
latency (one query at a time, one faiss thread, as a web process runs a shopper's query)
with p50/p99, and recall@10 against exact search, sweeping efSearch / nprobe. It prints
which kind ``auto`` picks at each size with its figures, then measures the resident memory
(RSS, PSS, USS from /proc) of a process that serves the largest index, read into memory
and memory-mapped, and of two mapped processes side by side.

Vectors are synthetic at the product's dimension (592: shape and layout whitened to 256
dimensions each, a 72-bin colour histogram, and an 8-category head on the demo catalog), and
clustered like real embeddings: 8 categories, one style per 100 products, anisotropic spread
(a power-law spectrum on axes that differ by category), 10 % near-duplicates (colourways);
uniform random vectors have no neighbourhood structure and make every approximate index look
worse than it is on real embeddings.

Wall time: --quick about 1 minute; the full run took 18 minutes on 2 quiet cores (the 1M HNSW
build with M=32 and efConstruction 160: 10.7 minutes; 3.8 with efConstruction 64). ``--sizes
10000,100000`` leaves out 1M (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender import index as vector_index  # noqa: E402
from recommender import index_kinds  # noqa: E402

# Shape (256 whitened) + layout (256 whitened) + colour (72 bins) + one head dimension per
# demo category (8): the default pipeline's index vectors on the demo catalog.
DIM = 592
K = 10
RECALL_TARGET = 0.95
LATENCY_TARGET_MS = 1.0
EF_SWEEP = (16, 32, 64, 96, 128, 192, 256)
NPROBE_SWEEP = (2, 4, 8, 16, 24, 32, 48, 64, 96, 128)
PQ_SWEEP = (4, 16, 64)
PQ_SUBQUANTIZERS = DIM // 4  # 4 dimensions per byte: 148 bytes per vector instead of 2,368


# ---------------------------------------------------------------------------- data


def clustered(n: int, d: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors from an anisotropic Gaussian mixture (categories > styles > items)."""
    rng = np.random.default_rng(seed)
    n_categories, per_style, spread = 8, 100, 1.2
    categories = rng.standard_normal((n_categories, d)).astype(np.float32)
    spectrum = np.arange(1, d + 1, dtype=np.float32) ** -0.5
    spectrum *= np.sqrt(d / (spectrum**2).sum())
    # Each category spreads along its own axes: the same spectrum, permuted.
    scales = np.stack([rng.permutation(spectrum) for _ in range(n_categories)])
    n_styles = max(n_categories, n // per_style)
    style_category = rng.integers(0, n_categories, n_styles)
    noise = rng.standard_normal((n_styles, d)).astype(np.float32)
    styles = categories[style_category] + 0.9 * noise * scales[style_category]
    style_spread = rng.uniform(0.5, 1.5, n_styles).astype(np.float32) * spread
    x = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):
        rows = rng.integers(0, n_styles, min(100_000, n - start))
        noise = rng.standard_normal((len(rows), d)).astype(np.float32)
        x[start : start + len(rows)] = styles[rows] + (
            noise * scales[style_category[rows]] * style_spread[rows, None]
        )
    copies = rng.choice(n, n // 10, replace=False)
    originals = rng.integers(0, n, len(copies))
    x[copies] = x[originals] + 0.05 * rng.standard_normal((len(copies), d)).astype(np.float32)
    faiss.normalize_L2(x)
    return x


# ---------------------------------------------------------------------------- measuring


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k ids that were found."""
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def search(index: faiss.Index, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The product's search() for the kinds it serves; plain faiss for IVF-PQ (reference)."""
    if isinstance(index, faiss.IndexIVFPQ):
        return index.search(xq, k)
    return vector_index.search(index, xq, k)


def latencies_ms(index: faiss.Index, xq: np.ndarray) -> np.ndarray:
    """Milliseconds of each single-query search, through the product's search()."""
    faiss.omp_set_num_threads(1)
    search(index, xq[:1], K)  # warm-up
    out = []
    for row in xq:
        started = time.perf_counter()
        search(index, row[None], K)
        out.append((time.perf_counter() - started) * 1000)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return np.array(out)


def point(index: faiss.Index, xq: np.ndarray, truth: np.ndarray, n_latency: int) -> dict:
    """Recall@10 (all queries, batched) and single-query p50/p99 (the first n_latency)."""
    _, found = search(index, xq, K)
    ms = latencies_ms(index, xq[:n_latency])
    return {
        "recall": recall_at_k(found, truth),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def index_bytes(index: faiss.Index) -> int:
    """Size of the serialised index (what is on disk and, read or mapped, in memory)."""
    writer = faiss.VectorIOWriter()
    faiss.write_index(index, writer)
    return writer.data.size()


def build_timed(ids: np.ndarray, xb: np.ndarray, kind: str) -> tuple[faiss.Index, float]:
    """Build with the product's code and its default parameters for this kind and size."""
    started = time.perf_counter()
    index = vector_index.build_index(ids, xb, kind=kind)
    return index, time.perf_counter() - started


def ivfpq(xb: np.ndarray, ids: np.ndarray) -> tuple[faiss.Index, float]:
    """IVF-PQ (reference only): the product's IVF lists, product-quantised codes."""
    started = time.perf_counter()
    nlist = index_kinds.ivf_nlist(len(xb))
    index = faiss.IndexIVFPQ(
        faiss.IndexFlatIP(xb.shape[1]), xb.shape[1], nlist, PQ_SUBQUANTIZERS, 8,
        faiss.METRIC_INNER_PRODUCT,
    )  # fmt: skip
    index.cp.niter = 10
    index.cp.max_points_per_centroid = index_kinds.IVF_TRAIN_PER_LIST
    index.pq.cp.niter = 10
    sample = xb[np.random.default_rng(1).choice(len(xb), min(len(xb), 64 * nlist), replace=False)]
    index.train(sample)
    index.add_with_ids(xb, ids)
    return index, time.perf_counter() - started


def measure_size(n: int, nq: int, progress: tqdm, save_auto: Path | None = None) -> dict:
    """Every kind at one catalog size; the kind ``auto`` picks is saved into ``save_auto``."""
    data = clustered(n + nq, seed=n)
    xb, xq = data[:n], data[n:]
    ids = np.arange(n, dtype=np.int64) * 3 + 1  # product ids, not positions
    n_latency = min(nq, 300)
    result: dict = {"n": n, "kinds": {}}

    flat, seconds = build_timed(ids, xb, "flat")
    _, truth = flat.search(xq, K)  # exact ground truth, batched on all cores
    flat_latency = n_latency if n <= 100_000 else 100  # ~1M x 264 multiply-adds per query
    result["kinds"]["flat"] = {
        "params": {},
        "build_s": seconds,
        "bytes": index_bytes(flat),
        "points": [{"param": None, **point(flat, xq, truth, flat_latency)}],
    }
    progress.update()
    auto = vector_index.index_spec(n, "auto")
    if save_auto is not None and auto.kind == "flat":
        _save(flat, save_auto)
    del flat
    for kind, values in (("hnsw", EF_SWEEP), ("ivf", NPROBE_SWEEP)):
        index, result["kinds"][kind] = sweep(ids, xb, xq, truth, kind, n_latency, values)
        if save_auto is not None and auto.kind == kind:
            _save(index, save_auto)  # the memory probes serve this one: no second 1M build
        del index
        progress.update()
    index, seconds = ivfpq(xb, ids)
    result["kinds"]["ivfpq"] = {
        "params": {"nlist": index.nlist, "m": PQ_SUBQUANTIZERS, "nbits": 8},
        "build_s": seconds,
        "bytes": index_bytes(index),
        "points": probe_sweep(index, xq, truth, n_latency, PQ_SWEEP),
    }
    progress.update()
    result["auto"] = {"kind": auto.kind, "params": auto.params, **auto_figures(result, auto)}
    return result


def _save(index: faiss.Index, directory: Path) -> None:
    with vector_index.writer_lock(directory):
        vector_index.save_index(index, directory, model_id="bench", weights_id="bench")


def sweep(ids, xb, xq, truth, kind, n_latency, values) -> tuple[faiss.Index, dict]:
    """Build one kind with the product's defaults, then sweep its search-time parameter."""
    index, seconds = build_timed(ids, xb, kind)
    spec = index_kinds.spec_of(index)
    if kind == "hnsw":
        values = sorted({*values, spec.params["ef_search"]})
        graph = faiss.downcast_index(index.index).hnsw
        points = []
        for ef in values:
            graph.efSearch = ef
            points.append({"param": ef, **point(index, xq, truth, n_latency)})
        graph.efSearch = spec.params["ef_search"]
    else:
        values = sorted({*values, spec.params["nprobe"]})
        points = probe_sweep(index, xq, truth, n_latency, values)
    entry = {"params": spec.params, "build_s": seconds, "bytes": index_bytes(index)}
    return index, {**entry, "points": points}


def probe_sweep(index, xq, truth, n_latency, values) -> list[dict]:
    """Recall and latency of an IVF index at each nprobe (up to its number of lists)."""
    ivf = faiss.extract_index_ivf(index)
    default, points = ivf.nprobe, []
    for nprobe in values:
        if nprobe <= ivf.nlist:
            ivf.nprobe = nprobe
            points.append({"param": nprobe, **point(index, xq, truth, n_latency)})
    ivf.nprobe = default
    return points


def auto_figures(result: dict, spec: index_kinds.IndexSpec) -> dict:
    """The measured point of the kind and search parameter ``auto`` picks."""
    entry = result["kinds"][spec.kind]
    wanted = spec.params.get("ef_search", spec.params.get("nprobe"))
    chosen = next(p for p in entry["points"] if p["param"] == wanted)
    return {"build_s": entry["build_s"], "bytes": entry["bytes"], **chosen}


def flat_scan(sizes: list[int]) -> list[dict]:
    """Exact search p50/p99 at more sizes: where flat stops being fast (auto's first threshold)."""
    out = []
    for n in tqdm(sizes, desc="flat by size", unit="size"):
        data = clustered(n + 200, seed=n)
        index = vector_index.build_index(np.arange(n, dtype=np.int64), data[:n], kind="flat")
        ms = latencies_ms(index, data[n:])
        out.append(
            {"n": n, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
        )
    return out


# ---------------------------------------------------------------------------- serving memory


PROBE = """
import json, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from recommender import index as vector_index
import faiss
faiss.omp_set_num_threads(1)
directory, mmap, xq_path = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
xq = np.load(xq_path)
def memory():
    out = {{}}
    for line in open("/proc/self/smaps_rollup"):
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[key] = int(rest.split()[0]) * 1024
    return {{"rss": out["Rss"], "pss": out["Pss"],
             "uss": out["Private_Clean"] + out["Private_Dirty"]}}
before = memory()
started = time.perf_counter()
index, manifest = vector_index.load_index(directory, mmap=mmap)
load_s = time.perf_counter() - started
for row in xq:
    vector_index.search(index, row[None], 10)
print(json.dumps({{"load_s": load_s, "before": before, "after": memory()}}), flush=True)
sys.stdin.read()  # stay alive (pages mapped) until the parent has measured its sibling
"""


def serving_memory(directory: Path, xq: np.ndarray) -> dict:
    """Resident memory of processes that load the saved index as the web processes do."""
    manifest = vector_index.read_manifest(directory)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "xq.npy", xq)
        args = [str(directory), None, str(Path(tmp) / "xq.npy")]
        read = _probe([args[:1] + ["0"] + args[2:]])[0]
        mapped = _probe([args[:1] + ["1"] + args[2:]] * 2)
    return {
        "kind": manifest.index_kind,
        "file_bytes": manifest.size,
        "read": read,
        "mmap_two": mapped,
    }


def _probe(arg_lists: list[list[str]]) -> list[dict]:
    """Run probe processes side by side; return each one's figures while all are alive."""
    code = PROBE.format(repo=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for args in arg_lists
    ]
    # Each line is read while every process still holds its index, so PSS shares pages.
    results = [json.loads(p.stdout.readline()) for p in procs]
    again = [_smaps(p.pid) for p in procs]
    for proc in procs:
        proc.communicate("")
    for result, now in zip(results, again, strict=True):
        result["all_alive"] = now
    return results


def _smaps(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[key] = int(rest.split()[0]) * 1024
    return {
        "rss": out["Rss"],
        "pss": out["Pss"],
        "uss": out["Private_Clean"] + out["Private_Dirty"],
    }


# ---------------------------------------------------------------------------- GPU


def gpu_figures(sizes: list[int]) -> dict | str:
    """Exact search on the GPU (faiss-gpu), where there is one."""
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return "not measured (no GPU)"
    resources = faiss.StandardGpuResources()
    out = {}
    for n in sizes:
        data = clustered(n + 300, seed=n)
        index = faiss.GpuIndexFlatIP(resources, DIM)
        index.add(data[:n])
        ms = []
        for row in data[n:]:
            started = time.perf_counter()
            index.search(row[None], K)
            ms.append((time.perf_counter() - started) * 1000)
        out[str(n)] = {
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
        }
    return out


# ---------------------------------------------------------------------------- report


def machine() -> dict:
    """CPU, cores and library versions of this run."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "faiss": faiss.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
    }


def table_rows(result: dict) -> list[str]:
    """Markdown rows: each kind at its product default, and its best point."""
    rows = []
    n = result["n"]
    for kind, entry in result["kinds"].items():
        default = entry["params"].get("ef_search", entry["params"].get("nprobe"))
        chosen = next((p for p in entry["points"] if p["param"] == default), entry["points"][-1])
        rows.append(
            f"| {n:,} | {kind} | {_params(entry['params'])} | {entry['build_s']:.1f} | "
            f"{entry['bytes'] / 2**20:.0f} | {chosen['p50_ms']:.3f} | {chosen['p99_ms']:.3f} | "
            f"{chosen['recall']:.3f} |"
        )
    return rows


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def sweep_rows(result: dict) -> list[str]:
    """Markdown rows of the efSearch / nprobe sweeps."""
    rows = []
    for kind in ("hnsw", "ivf", "ivfpq"):
        name = "efSearch" if kind == "hnsw" else "nprobe"
        cells = [
            f"{name}={p['param']}: {p['recall']:.3f} / {p['p50_ms']:.3f} ms"
            for p in result["kinds"][kind]["points"]
        ]
        rows.append(f"| {result['n']:,} | {kind} | {'; '.join(cells)} |")
    return rows


def plot(results: list[dict], path: Path) -> None:
    """Recall@10 against p50 latency per size (one panel each), every kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        for kind, marker in (("flat", "s"), ("hnsw", "o"), ("ivf", "^"), ("ivfpq", "v")):
            pts = result["kinds"][kind]["points"]
            ax.plot(
                [p["p50_ms"] for p in pts], [p["recall"] for p in pts], marker=marker, label=kind
            )
        auto = result["auto"]
        ax.plot(auto["p50_ms"], auto["recall"], "k*", markersize=14, label=f"auto ({auto['kind']})")
        ax.axhline(RECALL_TARGET, color="grey", linestyle="--", linewidth=0.8)
        ax.axvline(LATENCY_TARGET_MS, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{result['n']:,} vectors, d={DIM}")
        ax.set_xlabel("single-query p50 (ms, 1 thread)")
        ax.set_ylabel("recall@10 vs exact")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def targets(results: list[dict], memory: dict | None) -> list[str]:
    """One line per target: what was asked, what was measured, met or missed."""
    lines = []
    worst = min(r["auto"]["recall"] for r in results)
    lines.append(
        _target(
            f"auto recall@10 >= {RECALL_TARGET} at every size",
            f"{worst:.3f} (lowest)",
            worst >= RECALL_TARGET,
        )
    )
    largest = results[-1]
    if largest["n"] >= 1_000_000:
        p50 = largest["auto"]["p50_ms"]
        lines.append(
            _target(
                "1M products: p50 <= 1 ms per query",
                f"{p50:.3f} ms ({largest['auto']['kind']})",
                p50 <= LATENCY_TARGET_MS,
            )
        )
    else:
        lines.append(
            "- target: 1M products: p50 <= 1 ms — not measured in this run "
            f"(largest {largest['n']:,})"
        )
    if memory:
        read, mapped = memory["read"]["after"], memory["mmap_two"][0]["all_alive"]
        lines.append(
            f"- target: web process memory with the {largest['n']:,} index, memory-mapped and "
            f"shared — measured: PSS {mapped['pss'] / 2**20:.0f} MiB per process with two "
            f"processes mapped against RSS {read['rss'] / 2**20:.0f} MiB read into memory — "
            + ("met" if mapped["pss"] < read["rss"] else "missed")
        )
    return lines


def _target(what: str, measured: str, met: bool) -> str:
    return f"- target: {what} — measured: {measured} — {'met' if met else 'missed'}"  # fmt: skip


def memory_rows(memory: dict) -> list[str]:
    """Markdown rows of the serving-memory probes."""
    mib = 2**20
    read, (first, second) = memory["read"], memory["mmap_two"]
    rows = [
        "| loading | load s | RSS MiB | PSS MiB | USS MiB |",
        "|---|---|---|---|---|",
        f"| python + faiss, nothing loaded | - | {read['before']['rss'] / mib:.0f} | "
        f"{read['before']['pss'] / mib:.0f} | {read['before']['uss'] / mib:.0f} |",
        f"| read into memory (`LOOKALIKE_INDEX_MMAP=0`) | {read['load_s']:.2f} | "
        f"{read['after']['rss'] / mib:.0f} | {read['after']['pss'] / mib:.0f} | "
        f"{read['after']['uss'] / mib:.0f} |",
    ]
    for name, probe in (("first", first), ("second", second)):
        now = probe["all_alive"]
        rows.append(
            f"| memory-mapped, {name} of two processes | {probe['load_s']:.2f} | "
            f"{now['rss'] / mib:.0f} | {now['pss'] / mib:.0f} | {now['uss'] / mib:.0f} |"
        )
    return rows


def report(results, scan, memory, gpu, info, command, elapsed) -> str:
    """The markdown section for docs/benchmarks.md."""
    lines = [
        "## Vector index: kinds, build, memory, latency and recall",
        "",
        f"Synthetic clustered vectors at the product's dimension ({DIM}; see the script's "
        "docstring for the mixture), 1,000 held-out queries for recall@10 against exact search, "
        "single-query latency through the shop's `search()` with one faiss thread (a web "
        "process answers one shopper at a time; faiss runs a single query on one thread anyway), "
        f"builds on all {info['cores']} cores. Index MB is the serialised size. Each kind is "
        "built by `recommender.index.build_index` with its product defaults; the row shows the "
        "default search parameter. Baseline: `flat` (exact, what the shop served before).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, faiss {info['faiss']}, "
        f"{info['date']}, load average at start {info['load_average'][0]:.1f}; wall time "
        f"{elapsed / 60:.1f} min.",
        "",
        "| vectors | kind | parameters | build s | index MB | p50 ms | p99 ms | recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines += table_rows(result)
    lines += ["", "`auto` at each size, against the exact baseline:", ""]
    lines += ["| vectors | auto picks | p50 ms | p99 ms | recall@10 | flat p50 ms | speed-up |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for r in results:
        a, flat = r["auto"], r["kinds"]["flat"]["points"][0]
        lines.append(
            f"| {r['n']:,} | {index_kinds.IndexSpec(a['kind'], a['params']).describe()} | "
            f"{a['p50_ms']:.3f} | {a['p99_ms']:.3f} | {a['recall']:.3f} | {flat['p50_ms']:.3f} | "
            f"{flat['p50_ms'] / a['p50_ms']:.1f}x |"
        )
    lines += ["", "Sweeps (recall@10 / p50):", "", "| vectors | kind | points |", "|---|---|---|"]
    for result in results:
        lines += sweep_rows(result)
    lines += ["", "Exact (flat) search by catalog size, single query, one thread:", ""]
    lines += ["| vectors | " + " | ".join(f"{r['n']:,}" for r in scan) + " |"]
    lines += ["|---|" + "---|" * len(scan)]
    lines += ["| p50 ms | " + " | ".join(f"{r['p50_ms']:.3f}" for r in scan) + " |"]
    lines += ["| p99 ms | " + " | ".join(f"{r['p99_ms']:.3f}" for r in scan) + " |"]
    lines += ["", "![](index.png)", ""]
    if memory:
        lines += [
            f"Memory of a serving process that loaded the {results[-1]['n']:,}-vector "
            f"{memory['kind']} index ({memory['file_bytes'] / 2**20:.0f} MiB file) and answered "
            "300 queries; two mapped processes measured while both were alive (PSS splits shared "
            "pages between them; the page cache holds the file once):",
            "",
            *memory_rows(memory),
            "",
        ]
    lines += [f"faiss-gpu: {gpu if isinstance(gpu, str) else json.dumps(gpu)}", ""]
    lines += ["Command: `" + command + "`", "", *targets(results, memory), ""]
    return "\n".join(lines)


def print_auto(result: dict) -> None:
    a = result["auto"]
    spec = index_kinds.IndexSpec(a["kind"], a["params"])
    print(
        f"auto at {result['n']:,}: {spec.describe()}: recall@10 {a['recall']:.3f}, "
        f"p50 {a['p50_ms']:.3f} ms, p99 {a['p99_ms']:.3f} ms, build {a['build_s']:.1f} s, "
        f"{a['bytes'] / 2**20:.0f} MB",
        flush=True,
    )


def main() -> None:
    """Measure, print the tables, write index.json / index.png / index.md into --out."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5k and 20k vectors (~1 minute)")
    parser.add_argument("--out", default="docs/benchmarks")
    parser.add_argument("--sizes", help="comma-separated sizes, e.g. 10000,100000")
    parser.add_argument("--no-memory", action="store_true", help="skip the serving-memory probes")
    args = parser.parse_args()
    sizes = [5_000, 20_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    nq = 300 if args.quick else 1000
    info, started = machine(), time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    results = []
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    save_auto = None if args.no_memory else work / "index"
    with tqdm(total=4 * len(sizes), desc="index kinds", unit="build") as progress:
        for n in sizes:
            largest = n == sizes[-1]
            results.append(measure_size(n, nq, progress, save_auto if largest else None))
            progress.write("\n".join(table_rows(results[-1])))
            print_auto(results[-1])
    scan = flat_scan(
        [2_000, 5_000, 10_000, 20_000]
        if args.quick
        else [10_000, 20_000, 30_000, 50_000, 75_000, 100_000]
    )
    for row in scan:
        print(f"flat at {row['n']:,}: p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms")
    memory = None
    if save_auto is not None:
        n = sizes[-1]
        print(
            f"serving memory with the {n:,} index ({results[-1]['auto']['kind']}) ...", flush=True
        )
        memory = serving_memory(save_auto, clustered(n + 300, seed=n)[n:])
        print("\n".join(memory_rows(memory)))
    shutil.rmtree(work, ignore_errors=True)
    gpu = gpu_figures(sizes)
    print(f"faiss-gpu: {gpu if isinstance(gpu, str) else json.dumps(gpu)}")
    elapsed = time.perf_counter() - started
    command = "python scripts/bench_index.py" + " ".join([""] + sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = {"machine": info, "dim": DIM, "k": K, "results": results, "flat_by_size": scan}
    raw.update(memory=memory, gpu=gpu)
    raw["elapsed_s"] = elapsed
    (out / "index.json").write_text(json.dumps(raw, indent=1))
    plot(results, out / "index.png")
    md = report(results, scan, memory, gpu, info, command, elapsed)
    (out / "index.md").write_text(md)
    print("\n".join(targets(results, memory)))
    print(f"wrote {out}/index.json, index.png, index.md in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
