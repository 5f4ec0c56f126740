"""The kinds of FAISS index the shop can serve, and the choice between them by catalog size.

Plain numpy + faiss (no Django). Every kind keeps product ids, searches by inner product
(= cosine on L2-normalised vectors) and stores the full vectors, so any index can be rebuilt
as another kind from its own contents:

- ``flat``: ``IndexIDMap2(IndexFlatIP)``, exact search. Adds and removals in place.
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)``, a graph. Adds in place; faiss cannot remove from
  an HNSW graph, so a removal or a photo update rebuilds the graph from the vectors the index
  holds (no training, but it costs a full build: see docs/benchmarks.md).
- ``ivf``: ``IndexIVFFlat`` with its own ids and a hash-table direct map (so removals and
  reconstruction by id work in place). Trained (k-means) on the catalog at build time;
  a catalog too small to train gets ``flat``.

``auto`` picks by catalog size with the thresholds below, which ``scripts/bench_index.py``
measured (recall@10 >= 0.95 against exact search, then the lowest single-query latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf")
CHOICES = ("auto", *KINDS)

# `auto` (figures in docs/benchmarks/index.md, at the default pipeline's 592 dimensions, from
# the AMX Xeon of 2026-12-03): exact search up to AUTO_FLAT_MAX products (p50 about 1 ms at 10k,
# 2.4 ms at 20k, 25 ms at 100k), IVF up to AUTO_HNSW_MIN (recall@10 0.974 at 100k, p50 0.68 ms;
# it removes entries in place), HNSW above. IVF probes a fixed share of its lists, so it scans a
# fixed share of the catalog and its latency grows with n: 6.5 ms at 1M. HNSW with M=32 answers
# 1M within 1 ms at recall above 0.95 when its graph is built with care: efConstruction 160 and
# efSearch 71 gave recall 0.966 in 0.75 ms (p50), where efConstruction 64 needed efSearch 171
# and 1.23 ms for 0.962. Its cost: faiss cannot remove from the graph, so a sync that removes
# a product or changes a photo rebuilds it (at 1M on 2 cores: 10.7 minutes with
# efConstruction 160, 3.8 with 64; in the worker, while the previous version serves).
AUTO_FLAT_MAX = 20_000
AUTO_HNSW_MIN: int | None = 200_000

HNSW_M = 32  # graph degree: at 1M, M=16 reached only 0.936 recall at 1.5 ms (efSearch 304)
HNSW_EF_CONSTRUCTION = 160  # a better graph: shoppers wait less, the worker builds longer
HNSW_EF_SEARCH = 40  # at 100k; above, scaled with n ** 0.25 (71 at 1M)

IVF_MIN_TRAIN = 2_000  # fewer vectors than this: too few to train lists, build flat instead
IVF_POINTS_PER_LIST = 39  # faiss warns below 39 training points per centroid
IVF_TRAIN_PER_LIST = 64  # training sample size per list (k-means cost grows with it)
IVF_NPROBE_SHARE = 0.025  # lists probed per query, as a share of nlist (0.967 at 100k)
IVF_MIN_NPROBE = 8
IVF_RETRAIN_RATIO = 2.0  # retrain when the catalog wants this many times more lists (~4x size)


@dataclass(frozen=True)
class IndexSpec:
    """An index kind and its build and search parameters, as recorded in the manifest."""

    kind: str = "flat"
    params: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """A short human-readable form, e.g. ``hnsw (M=16, ef_construction=40, ef_search=96)``."""
        if not self.params:
            return self.kind
        return f"{self.kind} ({', '.join(f'{k}={v}' for k, v in sorted(self.params.items()))})"


def choose_kind(n: int, requested: str = "auto") -> str:
    """The kind to build for a catalog of ``n`` products when ``requested`` is asked for."""
    if requested not in CHOICES:
        raise ValueError(f"unknown index kind {requested!r}; use one of {', '.join(CHOICES)}")
    kind = requested
    if requested == "auto":
        if n <= AUTO_FLAT_MAX:
            kind = "flat"
        elif AUTO_HNSW_MIN is None or n < AUTO_HNSW_MIN:
            kind = "ivf"
        else:
            kind = "hnsw"
    if kind == "ivf" and n < IVF_MIN_TRAIN:
        return "flat"  # nothing to train lists on: exact search is also the fastest here
    return kind


def default_spec(kind: str, n: int, overrides: dict[str, int] | None = None) -> IndexSpec:
    """Parameters of ``kind`` for ``n`` vectors, with explicit ``overrides`` (0 = default)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v}
    if kind == "flat":
        return IndexSpec("flat")
    if kind == "hnsw":
        params = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": hnsw_ef(n)}
        return IndexSpec("hnsw", {**params, **_known(overrides, params)})
    if kind == "ivf":
        nlist = ivf_nlist(n)
        params = {"nlist": nlist, "nprobe": ivf_nprobe(nlist)}
        params = {**params, **_known(overrides, params)}
        params["nprobe"] = min(params["nprobe"], params["nlist"])
        return IndexSpec("ivf", params)
    raise ValueError(f"unknown index kind {kind!r}; use one of {', '.join(KINDS)}")


def hnsw_ef(n: int) -> int:
    """efSearch for ``n`` vectors: the graph is wider to cover at 1M than at 100k."""
    return max(HNSW_EF_SEARCH, round(HNSW_EF_SEARCH * (n / 100_000) ** 0.25))


def ivf_nlist(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: about 2 sqrt(n), with enough points to train."""
    return max(1, min(round(2 * math.sqrt(n)), n // IVF_POINTS_PER_LIST))


def ivf_nprobe(nlist: int) -> int:
    """Lists probed per query for ``nlist`` lists."""
    return min(nlist, max(IVF_MIN_NPROBE, math.ceil(IVF_NPROBE_SHARE * nlist)))


def _known(overrides: dict[str, int], params: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in overrides.items() if k in params}


# ---------------------------------------------------------------------------- build


def build(spec: IndexSpec, ids: np.ndarray, xb: np.ndarray, d: int) -> faiss.Index:
    """A new index of ``spec`` holding ``xb`` under ``ids`` (trained on ``xb`` if it needs it)."""
    index = empty(spec, d, train_on=xb)
    if len(ids):
        index.add_with_ids(xb, ids)
    return index


def empty(spec: IndexSpec, d: int, train_on: np.ndarray | None = None) -> faiss.Index:
    """An empty index of ``spec``; an IVF index is trained on a sample of ``train_on``."""
    if spec.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    if spec.kind == "hnsw":
        graph = faiss.IndexHNSWFlat(d, spec.params["M"], faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = spec.params["ef_construction"]
        graph.hnsw.efSearch = spec.params["ef_search"]
        return faiss.IndexIDMap2(graph)
    if spec.kind == "ivf":
        return _trained_ivf(spec, d, train_on)
    raise ValueError(f"unknown index kind {spec.kind!r}")


def _trained_ivf(spec: IndexSpec, d: int, xb: np.ndarray | None) -> faiss.Index:
    nlist = spec.params["nlist"]
    if xb is None or len(xb) < nlist:
        raise ValueError(f"an IVF index of {nlist} lists needs at least {nlist} training vectors")
    # The quantizer is owned by the IVF index once it is passed in (faiss keeps a reference).
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10  # k-means converges well enough for search in 10 iterations
    index.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
    index.cp.seed = 1234
    index.train(_sample(xb, nlist * IVF_TRAIN_PER_LIST))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = spec.params["nprobe"]
    return index


def _sample(xb: np.ndarray, n: int) -> np.ndarray:
    if len(xb) <= n:
        return xb
    rows = np.random.default_rng(1234).choice(len(xb), n, replace=False)
    return np.ascontiguousarray(xb[np.sort(rows)])


# ---------------------------------------------------------------------------- inspect


def kind_of(index: faiss.Index) -> str:
    """The kind of a built or loaded index, from its faiss structure."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexFlat):
            return "flat"
        if isinstance(inner, faiss.IndexHNSWFlat):
            return "hnsw"
    raise TypeError(f"not an index this shop builds: {type(index).__name__}")


def spec_of(index: faiss.Index) -> IndexSpec:
    """The kind and parameters of a built or loaded index, read from its structure."""
    kind = kind_of(index)
    if kind == "hnsw":
        hnsw = faiss.downcast_index(index.index).hnsw
        # Levels above 0 hold M neighbours per node (level 0 holds 2 M).
        params = {"M": int(hnsw.nb_neighbors(1)), "ef_construction": int(hnsw.efConstruction)}
        return IndexSpec("hnsw", {**params, "ef_search": int(hnsw.efSearch)})
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        return IndexSpec("ivf", {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)})
    return IndexSpec("flat")


def ids_of(index: faiss.Index) -> np.ndarray:
    """The product ids an index holds, in no particular order."""
    if kind_of(index) != "ivf":
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    chunks = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(lists.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(chunks).astype(np.int64) if chunks else np.empty(0, np.int64)


def vectors_of(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """Every (id, vector) the index holds, so it can be rebuilt as any kind."""
    ids = ids_of(index)
    if len(ids) == 0:
        return ids, np.empty((0, index.d), np.float32)
    if kind_of(index) == "ivf":
        return ids, index.reconstruct_batch(ids)
    # IndexIDMap2 positions are 0..n-1 in id_map order: one bulk copy, no per-id lookups.
    return ids, faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal)


def set_search_params(index: faiss.Index, spec: IndexSpec) -> None:
    """Apply the spec's search-time parameters (efSearch, nprobe) to a loaded index."""
    kind = kind_of(index)
    if kind == "hnsw" and "ef_search" in spec.params:
        faiss.downcast_index(index.index).hnsw.efSearch = int(spec.params["ef_search"])
    elif kind == "ivf" and "nprobe" in spec.params:
        faiss.extract_index_ivf(index).nprobe = int(spec.params["nprobe"])


def search_params(index: faiss.Index, k: int) -> faiss.SearchParameters | None:
    """Per-call parameters so that a deep search (large ``k``) can still fill its ``k`` rows."""
    kind = kind_of(index)
    if kind == "hnsw":
        ef = faiss.downcast_index(index.index).hnsw.efSearch
        # With efSearch below k the graph walk cannot collect k results.
        return faiss.SearchParametersHNSW(efSearch=2 * k) if 2 * k > ef else None
    if kind != "ivf":
        return None  # exact
    ivf = faiss.extract_index_ivf(index)
    per_list = max(1.0, ivf.ntotal / max(ivf.nlist, 1))
    # Probe enough lists to hold about twice k vectors, never fewer than configured.
    nprobe = min(ivf.nlist, max(ivf.nprobe, math.ceil(2 * k / per_list)))
    return None if nprobe == ivf.nprobe else faiss.SearchParametersIVF(nprobe=nprobe)


# ---------------------------------------------------------------------------- change


def update(
    index: faiss.Index, spec: IndexSpec, remove: np.ndarray, ids: np.ndarray, xb: np.ndarray
) -> faiss.Index:
    """Remove the ``remove`` ids, then add ``xb`` under ``ids``; returns the index to save.

    Flat and IVF change in place. HNSW cannot remove, so a removal rebuilds the graph from
    the vectors it holds (minus the removed ones) and returns that new index.
    """
    remove = np.asarray(remove, dtype=np.int64)
    if len(remove) and kind_of(index) == "hnsw":
        held_ids, held = vectors_of(index)
        keep = ~np.isin(held_ids, remove)
        index = build(spec, held_ids[keep], held[keep], index.d)
    elif len(remove):
        index.remove_ids(remove)
    if len(ids):
        index.add_with_ids(xb, ids)
    return index


def needs_restructure(spec: IndexSpec, n: int, requested: str) -> bool:
    """Whether an index of ``spec`` holding ``n`` vectors should be rebuilt as another kind."""
    wanted = choose_kind(n, requested)
    if wanted != spec.kind:
        return True
    # IVF lists trained on a much smaller catalog grow long and slow: retrain them.
    return spec.kind == "ivf" and ivf_nlist(n) > IVF_RETRAIN_RATIO * spec.params["nlist"]


def as_params(data: Any) -> dict[str, int]:
    """Validate a manifest's index parameters (a JSON object of integers)."""
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in data.items()
    ):
        raise ValueError(f"manifest index_params must map names to integers, got {data!r}")
    return dict(data)
