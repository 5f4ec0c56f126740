"""Embedding throughput on a GPU: resnet50 in bf16, model only and end to end from JPEG bytes.

Usage: python scripts/bench_embedding_gpu.py [--quick] [--out docs/benchmarks] [--device cuda]
       [--no-compile] [--autotune]

Run it on a machine with a CUDA GPU (the issue's targets are for an H100: at least 15,000
img/s model only and 8,000 img/s end to end). Every variant runs the same random-weight
resnet50 (throughput does not depend on the values) in the same run:

- model only: the product's extractor (folded batch norms, channels_last, autocast in bf16,
  the issue's precision, or with --precision fp16 in the product's GPU default),
  eager, then with the weights cast to that precision, then compiled as LOOKALIKE_COMPILE=1 compiles
  it (``embeddings.extractor.compiled``); with --autotune also inductor's max-autotune;
- end to end: JPEG bytes in memory to unit vectors on the host, for progressive JPEGs (the
  demo photos as the shop used to store them), baseline JPEGs (as it stores them now) and
  1200 px ones. nvJPEG decodes each batch on the GPU, photos of a size are resized together,
  and the next batches are decoded on a second stream while the model runs
  (``embeddings.jpeg.embed_jpegs``); the stages alone too;
- precision: bf16 and fp16 vectors against fp32 ones (TF32 off) for the same photos: pooled
  features of resnet50 and (when its package is importable) EfficientNet-Lite0 with its real
  ImageNet weights, and the default pipeline's catalog vectors.

``--device cpu --quick`` runs the same code on the CPU at toy sizes (a smoke test).
Writes embedding_gpu.json and embedding_gpu.md into --out.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_report import write_section  # noqa: E402

from embeddings.extractor import Extractor, _build_extractor, compiled  # noqa: E402
from embeddings.jpeg import embed_jpegs, jpeg_batch  # noqa: E402
from embeddings.pipeline import Pipeline, PipelineConfig  # noqa: E402
from embeddings.registry import get_backbone  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO_IMAGES = REPO / "demo_catalog" / "images"
TARGET_MODEL, TARGET_E2E, TARGET_COSINE = 15_000, 8_000, 0.999
# What LOOKALIKE_COMPILE=1 does on CUDA (embeddings.extractor.compiled)
COMPILE_LABEL = "torch.compile, inductor default mode"


def log(message: str) -> None:
    """Print now (the device returns the tail of the output; keep it readable)."""
    print(message, flush=True)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a host clock reads the work's time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn: Callable[[], int], device: torch.device, block_s: float, blocks: int = 5) -> float:
    """Images per second of ``fn`` (which returns its image count): median of timed blocks.

    One warm-up call, then one call timed alone to size the blocks, so each block runs for
    about ``block_s`` seconds; the device is synchronised at each block's ends.
    """
    fn()
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    calls = max(1, round(block_s / max(time.perf_counter() - started, 1e-6)))
    rates = []
    for _ in range(blocks):
        sync(device)
        started = time.perf_counter()
        n = sum(fn() for _ in range(calls))
        sync(device)
        rates.append(n / (time.perf_counter() - started))
    return statistics.median(rates)


def demo_jpegs(count: int, long_side: int | None = None, progressive: bool = True) -> list[bytes]:
    """The demo photos re-encoded as the shop stores a photo (quality 88, optimised; at
    ``long_side`` if given; progressive or baseline), repeated to count."""
    import io

    from PIL import Image

    out = []
    for path in sorted(DEMO_IMAGES.glob("*.jpg"))[:count]:
        image = Image.open(path).convert("RGB")
        if long_side:
            scale = long_side / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88, optimize=True, progressive=progressive)
        out.append(buffer.getvalue())
    return [out[i % len(out)] for i in range(count)]


def demo_photos(count: int) -> list:
    """The demo photos as PIL images (for the product pipeline's precision check)."""
    from PIL import Image

    return [Image.open(p).convert("RGB") for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:count]]


def model_only(
    base: Extractor, fast: Extractor | None, batches: list[int], rows: list, save, autotune: bool
) -> None:
    """img/s of resnet50 forward passes on ready random batches, variant by variant (each
    row appended to ``rows`` and saved as it is measured)."""
    device, size = base.device, base.backbone.input_size

    def measure(label: str, model: Callable, batch: int, autocast: bool, dtype=torch.float32):
        # Several buffers taken in turn: one would sit in L2 between calls.
        xs = [
            torch.randn(batch, 3, size, size, device=device, dtype=dtype).contiguous(
                memory_format=torch.channels_last
            )
            for _ in range(3)
        ]
        turn = [0]

        def forward() -> int:
            turn[0] += 1
            with torch.inference_mode(), base._autocast() if autocast else nullcontext():
                model(xs[turn[0] % len(xs)])
            return batch

        started = time.perf_counter()
        value = rate(forward, device, block_s=1.0 if device.type == "cuda" else 0.2)
        row = {"variant": label, "batch": batch, "img_s": round(value)}
        row["seconds_incl_warmup"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        save()
        log(f"  model only  {label:58s} batch {batch:4d}: {value:9.0f} img/s")

    for batch in batches:
        measure(f"product extractor ({base.precision} autocast, eager)", base.model, batch, True)
    bf16 = copy.deepcopy(base.model).to(base.dtype)
    measure(f"{base.precision} weights, eager", bf16, batches[0], False, base.dtype)
    if fast is not None:
        for batch in batches:
            measure(f"LOOKALIKE_COMPILE=1 ({COMPILE_LABEL})", fast.model, batch, True)
    if autotune:
        tuned = torch.compile(bf16, mode="max-autotune-no-cudagraphs", dynamic=False)
        measure(
            f"{base.precision} weights, torch.compile max-autotune-no-cudagraphs",
            tuned,
            batches[0],
            False,
            torch.bfloat16,
        )


PHOTO_SETS = (
    ("demo photos, progressive (as the shop stored them)", None, True),
    ("demo photos, baseline (as the shop stores them now)", None, False),
    ("at 1200 px, baseline", 1200, False),
)


def end_to_end(
    base: Extractor, fast: Extractor | None, count: int, batch: int, rows: list, save
) -> None:
    """JPEG bytes in memory to unit vectors on the host, with the stages alone."""
    device = base.device
    for label, long_side, progressive in PHOTO_SETS:
        datas = demo_jpegs(count, long_side, progressive)
        kilobytes = round(sum(map(len, datas)) / count / 1e3, 1)
        for name, fn in stage_runs(base, fast, datas, batch).items():
            value = rate(fn, device, block_s=2.0 if device.type == "cuda" else 0.1, blocks=3)
            row = {"photos": label, "kb_per_photo": kilobytes, "stage": name, "batch": batch}
            rows.append(row | {"img_s": round(value)})
            save()
            log(f"  end to end  {label[:30]:30s} {name:52s}: {value:8.0f} img/s")


def stage_runs(
    extractor: Extractor, fast: Extractor | None, datas: list[bytes], batch: int
) -> dict[str, Callable[[], int]]:
    """Each stage alone, the stages in turn, and the product's overlapped path."""
    from torchvision.io import ImageReadMode, decode_jpeg

    device, count = extractor.device, len(datas)
    chunks = [datas[i : i + batch] for i in range(0, count, batch)]

    def decode_only() -> int:
        for chunk in chunks:
            raw = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in chunk]
            decode_jpeg(raw, mode=ImageReadMode.RGB, device=device)
        return count

    def prepare_only() -> int:
        for chunk in chunks:
            jpeg_batch(chunk, extractor.backbone, "centre", device)
        return count

    def serial() -> int:
        for chunk in chunks:
            x = jpeg_batch(chunk, extractor.backbone, "centre", device)
            with torch.inference_mode(), extractor._autocast():
                F.normalize(extractor.model(extractor.to_device(x)).float(), dim=1).cpu()
        return count

    runs = {
        "nvJPEG decode alone": decode_only,
        "decode + resize + normalise alone": prepare_only,
        "serial: decode, then model, batch by batch": serial,
        "embed_jpegs (decode overlapped on a second stream)": lambda: len(
            embed_jpegs(extractor, datas, "centre", batch)
        ),
    }
    if fast is not None:
        runs[f"embed_jpegs, LOOKALIKE_COMPILE=1 ({COMPILE_LABEL})"] = lambda: len(
            embed_jpegs(fast, datas, "centre", batch)
        )
    return runs


def precision(weights: str, device: torch.device, count: int) -> dict:
    """Cosine of bf16 and fp16 vectors to fp32 ones (TF32 off) for the same photos: pooled
    features of resnet50 and EfficientNet-Lite0, and the default pipeline's catalog vectors."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    out = {}
    datas = demo_jpegs(count)
    photos = demo_photos(min(count, 64))
    config = PipelineConfig()
    for name, file in (("resnet50 (random weights)", weights), ("efficientnet_lite0", None)):
        backbone = name.split()[0]
        try:
            fp32 = _build_extractor(backbone, file, str(device), "fp32", download=False)
        except Exception as error:  # lite0's weights package may be missing on the device
            out[name] = f"not measured: {type(error).__name__}: {error}"[:200]
            continue
        reference = embed_jpegs(fp32, datas, "centre", 128)
        if backbone == config.backbones[0][0]:
            catalog = Pipeline(config, [fp32]).embed_catalog(photos)
        for precision_ in ("bf16", "fp16"):
            low = _build_extractor(backbone, file, str(device), precision_, download=False)
            c = np.sum(reference * embed_jpegs(low, datas, "centre", 128), axis=1)
            key = f"{name} pooled, {precision_}"
            out[key] = {"min": round(float(c.min()), 5), "mean": round(float(c.mean()), 5)}
            log(f"  cosine to fp32, {key}: {out[key]}")
            if backbone == config.backbones[0][0]:
                c = np.sum(catalog * Pipeline(config, [low]).embed_catalog(photos), axis=1)
                key = f"product catalog vectors ({config.key()}), {precision_}"
                out[key] = {"min": round(float(c.min()), 5), "mean": round(float(c.mean()), 5)}
                log(f"  cosine to fp32, {key}: {out[key]}")
    return out


def markdown(result: dict, command: str) -> str:
    """The run as a markdown section."""
    m = result["machine"]
    lines = [
        "## Embedding on a GPU",
        "",
        f"{m['gpu']}, {m['cores']} CPU cores, torch {m['torch']}, {m['date']}. Command: "
        f"`{command}`. resnet50 with random weights (throughput does not depend on them), "
        f"in {result['precision_run']}.",
        "",
        "![](embedding_gpu.png)",
        "",
        f"`torch.compile` (inductor, default mode) compiled the model in "
        f"{result.get('compile_s', 'n/a')} s for one batch size (the product's workers compile "
        "again at their second batch size, a graph with a dynamic batch dimension that serves "
        "every later size). Model only takes ready random batches on the GPU, several buffers in "
        "turn.",
        "",
        "| model only | batch | img/s |",
        "|---|---:|---:|",
    ]
    for row in result["model_only"]:
        lines.append(
            f"| {row['variant']} | {row.get('batch', '')} | {row.get('img_s', 'failed')} |"
        )
    lines += [
        "",
        "End to end: JPEG bytes in memory to unit vectors on the host. nvJPEG decodes "
        "progressive JPEGs mostly on the CPU, baseline ones on the GPU: the shop now stores its "
        "main photos in baseline (`shop.images.store_image`).",
        "",
        "| end to end from JPEG bytes | photos | KB each | batch | img/s |",
    ]
    lines.append("|---|---|---:|---:|---:|")
    for row in result["end_to_end"]:
        lines.append(
            f"| {row['stage']} | {row['photos']} | {row['kb_per_photo']} | {row['batch']} | "
            f"{row['img_s']} |"
        )
    lines += ["", "bf16 and fp16 vectors against fp32 (TF32 off), same photos:", ""]
    for name, value in result["precision"].items():
        lines.append(f"- {name}: {value}")
    lines += [""]
    for target, measured, met in result["targets"]:
        verdict = "not measured" if met is None else ("met" if met else "missed")
        lines.append(f"- target: {target} — measured: {measured} — {verdict}")
    return "\n".join(lines) + "\n"


def targets(result: dict) -> list[tuple[str, str, bool | None]]:
    """The issue's GPU targets: the product's variants (eager and LOOKALIKE_COMPILE) side by
    side, and each precision check in fp16, what "auto" picks on a GPU (bf16 beside it)."""
    model = {r["variant"]: r["img_s"] for r in result["model_only"] if r.get("batch") == 256}
    eager = max((v for k, v in model.items() if k.startswith("product extractor")), default=0)
    compiled_ = max((v for k, v in model.items() if k.startswith("LOOKALIKE_COMPILE")), default=0)
    e2e = [r for r in result["end_to_end"] if r["stage"].startswith("embed_jpegs")]
    best = max(e2e, key=lambda r: r["img_s"], default={"img_s": 0, "photos": "", "stage": ""})
    others = "; ".join(
        f"{r['photos']}: {r['img_s']}" for r in e2e if r is not best and "COMPILE" in r["stage"]
    )
    eager_e2e = [r["img_s"] for r in e2e if r["photos"] == best["photos"] and r is not best]
    out = [
        (
            f"H100 resnet50 {result['precision_run']} model only >= {TARGET_MODEL:,} img/s",
            f"{compiled_} img/s compiled (LOOKALIKE_COMPILE; on by default in GPU workers), "
            f"{eager} eager, batch 256",
            max(compiled_, eager) >= TARGET_MODEL,
        ),
        (
            f"H100 resnet50 {result['precision_run']} end to end from JPEG bytes >= "
            f"{TARGET_E2E:,} img/s",
            f"{best['img_s']} img/s ({best['photos']}, compiled; eager "
            f"{eager_e2e[0] if eager_e2e else 'n/a'}); compiled, {others}",
            best["img_s"] >= TARGET_E2E,
        ),
    ]
    for name, value in result["precision"].items():
        # fp16 is what LOOKALIKE_PRECISION=auto picks on a GPU (embeddings.extractor.pick_dtype)
        if name.endswith(", fp16") and isinstance(value, dict):
            bf16 = result["precision"].get(name[: -len("fp16")] + "bf16", {})
            out.append(
                (
                    f"GPU: {name[: -len(', fp16')]} in fp16 (the GPU default) within cosine "
                    f"{TARGET_COSINE} of fp32",
                    f"min {value['min']} (bf16: min {bf16.get('min', 'n/a')})",
                    value["min"] >= TARGET_COSINE,
                )
            )
    return out


def plot(result: dict, path: Path) -> None:
    """Two panels: model-only variants, and the end-to-end stages per kind of photo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.5), width_ratios=(1, 1.6))
    rows = [r for r in result["model_only"] if "img_s" in r]
    labels = [f"{r['variant'].replace(' (', chr(10) + '(')}, batch {r['batch']}" for r in rows]
    left.barh(range(len(rows)), [r["img_s"] for r in rows], color="#4c72b0")
    left.set_yticks(range(len(rows)), labels, fontsize=7)
    left.axvline(TARGET_MODEL, color="#c44e52", linestyle="--", label="target 15,000")
    left.set_xlabel("img/s (resnet50, random batches on the GPU)")
    left.set_title("Model only")
    left.legend(fontsize=8)
    left.invert_yaxis()
    sets = list(dict.fromkeys(r["photos"] for r in result["end_to_end"]))
    stages = list(dict.fromkeys(r["stage"] for r in result["end_to_end"]))
    width = 0.8 / len(stages)
    for i, stage in enumerate(stages):
        values = [
            next(
                (
                    r["img_s"]
                    for r in result["end_to_end"]
                    if r["photos"] == s_ and r["stage"] == stage
                ),
                0,
            )
            for s_ in sets
        ]
        right.bar([j + i * width for j in range(len(sets))], values, width, label=stage)
    right.axhline(TARGET_E2E, color="#c44e52", linestyle="--", label="target 8,000")
    names = [textwrap.fill(name, 26) for name in sets]
    right.set_xticks([j + 0.4 - width / 2 for j in range(len(sets))], names, fontsize=7)
    right.set_yscale("log")
    right.set_ylabel("img/s, JPEG bytes to vectors (log scale)")
    right.set_title("End to end")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.suptitle(f"Embedding on {result['machine']['gpu']} ({result['precision_run']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Measure, print, write embedding_gpu.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes, a smoke test")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="docs/benchmarks")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16"))
    parser.add_argument(
        "--autotune", action="store_true", help="also max-autotune (about 5 min on an H100)"
    )
    args = parser.parse_args()
    begun = time.time()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        # `make bench` runs every script: here that leaves the last GPU run's section as it is.
        log("No CUDA GPU here: skipped (docs/benchmarks/embedding_gpu.md keeps the last GPU run).")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = {
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "none (CPU smoke run)",
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    log(json.dumps(machine))
    weights = Path(tempfile.mkdtemp()) / "resnet50-random.pth"
    torch.manual_seed(0)
    torch.save(get_backbone("resnet50").build().state_dict(), weights)
    quick = args.quick
    batches = [4] if quick else [256, 512]
    result: dict = {"machine": machine, "quick": quick, "end_to_end": [], "model_only": []}
    save = lambda: (out / "embedding_gpu.json").write_text(json.dumps(result, indent=2))  # noqa: E731
    result["precision"] = precision(str(weights), device, 8 if quick else 256)
    save()  # after each part: a run cut off at the device's time limit keeps what it measured
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    result["precision_run"] = args.precision
    base = _build_extractor("resnet50", str(weights), args.device, args.precision, download=False)
    fast = None
    if not args.no_compile:
        fast = copy.copy(base)
        fast.model = compiled(copy.deepcopy(base.model), device)
        started = time.perf_counter()
        with torch.inference_mode(), fast._autocast():
            fast.model(base.to_device(torch.randn(batches[0], 3, 224, 224, device=device)))
        result["compile_s"] = round(time.perf_counter() - started, 1)
        log(f"  compiled ({COMPILE_LABEL}) in {result['compile_s']} s")
    count, batch = (8, 4) if quick else (4096, 256)
    end_to_end(base, fast, count, batch, result["end_to_end"], save)
    model_only(base, fast, batches, result["model_only"], save, args.autotune)
    result["targets"] = targets(result)
    for target, measured, met in result["targets"]:
        log(f"target: {target} — measured: {measured} — {met}")
    command = "python scripts/bench_embedding_gpu.py" + (" --quick" if quick else "")
    write_section(
        out, "embedding_gpu", result, lambda path: plot(result, path), markdown(result, command)
    )
    log(f"in {time.time() - begun:.0f} s")


if __name__ == "__main__":
    main()
