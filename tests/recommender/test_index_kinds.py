"""Index kinds (flat, HNSW, IVF): building, saving, mapping, changing, choosing by size."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from recommender import index_kinds
from recommender.index import (
    IndexCorrupt,
    build_index,
    index_spec,
    indexed_ids,
    load_index,
    reconstruct_vectors,
    restructure_index,
    save_index,
    search,
    update_index,
    writer_lock,
)

KINDS = ("flat", "hnsw", "ivf")


def clustered(n: int, d: int = 32, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors around ``clusters`` centres: the neighbourhood structure of embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, d))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def product_ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 7 + 1000


@pytest.fixture
def small_ivf(monkeypatch):
    """Let IVF train on the few thousand vectors a test can afford."""
    monkeypatch.setattr(index_kinds, "IVF_MIN_TRAIN", 100)


def save(index: faiss.Index, directory: Path):
    with writer_lock(directory):
        return save_index(index, directory, model_id="m", weights_id="w")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mmap", [False, True])
def test_each_kind_round_trips_through_save_and_load(kind, mmap, small_ivf, tmp_path):
    # given an index of this kind
    xb, xq = clustered(3000), clustered(20, seed=1)
    index = build_index(product_ids(3000), xb, kind=kind)
    expected = search(index, xq, 10)
    # when it is saved and loaded (read or memory-mapped)
    manifest = save(index, tmp_path)
    loaded, loaded_manifest = load_index(tmp_path, mmap=mmap)
    # then the manifest names the kind and parameters, and the loaded index answers the same
    assert manifest.index_kind == loaded_manifest.index_kind == kind
    assert loaded_manifest.index_params == index_kinds.spec_of(index).params
    assert sorted(indexed_ids(loaded)) == sorted(product_ids(3000))
    np.testing.assert_array_equal(search(loaded, xq, 10)[1], expected[1])


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_finds_an_exact_duplicate_first(kind, small_ivf):
    xb = clustered(3000)
    ids = product_ids(3000)
    index = build_index(ids, xb, kind=kind)
    D, I = search(index, xb[[5, 500, 2999]], 3)
    np.testing.assert_array_equal(I[:, 0], ids[[5, 500, 2999]])
    np.testing.assert_allclose(D[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_adds_removes_and_replaces_entries(kind, small_ivf):
    # given an index of this kind
    xb, ids = clustered(2000), product_ids(2000)
    index = build_index(ids, xb, kind=kind)
    new = clustered(3, seed=9)
    # when two products leave, one gets a new photo (vector) and one is added
    gone, changed, added = ids[:2], ids[10], 99_999
    index = update_index(
        index,
        np.array([*gone, changed]),
        np.array([changed, added]),
        new[:2],
    )
    # then exactly those entries changed, and each is found by its vector
    held = set(indexed_ids(index).tolist())
    assert held == (set(ids.tolist()) - set(gone.tolist())) | {added}
    assert index.ntotal == 1999
    np.testing.assert_allclose(reconstruct_vectors(index, [changed, added]), new[:2], atol=1e-6)
    _, I = search(index, new[:2], 1)
    assert I[:, 0].tolist() == [changed, added]
    _, I = search(index, xb[:2], 1)
    assert not set(I[:, 0].tolist()) & set(gone.tolist())


def test_an_hnsw_index_is_rebuilt_when_entries_leave():
    # faiss cannot remove from an HNSW graph: the update must hand back a rebuilt index
    index = build_index(product_ids(500), clustered(500), kind="hnsw")
    with pytest.raises(RuntimeError):
        index.remove_ids(product_ids(1))
    rebuilt = update_index(index, product_ids(1), np.empty(0, np.int64), np.empty(0))
    assert rebuilt is not index and rebuilt.ntotal == 499
    assert index_kinds.spec_of(rebuilt) == index_kinds.spec_of(index)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_recall_exact_neighbours(kind, small_ivf):
    # given clustered vectors and their exact top 10
    xb, xq = clustered(4000, d=48), clustered(200, d=48, seed=3)
    ids = product_ids(4000)
    _, truth = search(build_index(ids, xb, kind="flat"), xq, 10)
    # when searched approximately with the product's default parameters
    _, found = search(build_index(ids, xb, kind=kind), xq, 10)
    # then at least 90% of the true neighbours are found
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_a_deep_search_still_fills_every_row(kind, small_ivf):
    # the similar-items search widens k until filters leave enough products
    index = build_index(product_ids(3000), clustered(3000), kind=kind)
    _, I = search(index, clustered(2, seed=4), 1500)
    assert (I >= 0).all()


def test_auto_picks_flat_then_ivf_then_hnsw_by_catalog_size():
    flat_max, hnsw_min = index_kinds.AUTO_FLAT_MAX, index_kinds.AUTO_HNSW_MIN
    assert index_kinds.choose_kind(flat_max) == "flat"
    assert index_kinds.choose_kind(flat_max + 1) == "ivf"
    assert index_kinds.choose_kind(hnsw_min - 1) == "ivf"
    # IVF scans a fixed share of the catalog: past 1 ms per query, the graph takes over.
    assert index_kinds.choose_kind(hnsw_min) == "hnsw"
    assert index_kinds.choose_kind(10_000_000) == "hnsw"
    # Every kind can be asked for at any size.
    assert index_kinds.choose_kind(10, "hnsw") == "hnsw"
    assert index_kinds.choose_kind(10_000_000, "ivf") == "ivf"
    assert index_kinds.choose_kind(10_000_000, "flat") == "flat"


def test_auto_never_picks_hnsw_when_switched_off(monkeypatch):
    monkeypatch.setattr(index_kinds, "AUTO_HNSW_MIN", None)
    assert index_kinds.choose_kind(10_000_000) == "ivf"


def test_hnsw_searches_wider_in_larger_catalogs():
    assert index_spec(100_000, "hnsw").params["ef_search"] == index_kinds.HNSW_EF_SEARCH
    wider = index_spec(1_000_000, "hnsw").params["ef_search"]
    assert index_kinds.HNSW_EF_SEARCH < wider < 2 * index_kinds.HNSW_EF_SEARCH


def test_ivf_falls_back_to_flat_for_a_catalog_too_small_to_train():
    index = build_index(product_ids(50), clustered(50), kind="ivf")
    assert index_kinds.kind_of(index) == "flat"
    assert index_spec(index_kinds.IVF_MIN_TRAIN, "ivf").kind == "ivf"


def test_it_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown index kind"):
        build_index(product_ids(5), clustered(5), kind="annoy")


def test_search_parameters_can_be_overridden():
    spec = index_spec(100_000, "hnsw", {"ef_search": 300, "nprobe": 0})
    assert spec.params["ef_search"] == 300
    assert index_spec(100_000, "ivf", {"nprobe": 0}).params["nprobe"] == index_kinds.ivf_nprobe(
        index_kinds.ivf_nlist(100_000)
    )


def test_a_catalog_that_outgrows_exact_search_is_restructured(monkeypatch, small_ivf):
    # given a flat index that has grown past the auto threshold
    monkeypatch.setattr(index_kinds, "AUTO_FLAT_MAX", 1000)
    xb = clustered(1500)
    index = build_index(product_ids(1500), xb, kind="flat")
    # when it is checked against its size
    rebuilt = restructure_index(index, "auto")
    # then it comes back approximate, holding the same entries
    assert index_kinds.kind_of(rebuilt) == "ivf"
    assert sorted(indexed_ids(rebuilt)) == sorted(product_ids(1500))
    assert restructure_index(rebuilt, "auto") is None


def test_ivf_lists_are_retrained_when_the_catalog_has_grown_fourfold(small_ivf):
    index = build_index(product_ids(1000), clustered(1000), kind="ivf")
    more = clustered(5000, seed=5)
    index.add_with_ids(more, np.arange(5000, dtype=np.int64) + 10**6)
    rebuilt = restructure_index(index, "ivf")
    assert rebuilt is not None
    assert rebuilt.nlist == index_kinds.ivf_nlist(6000) > index.nlist


@pytest.mark.parametrize("kind", KINDS)
def test_a_truncated_or_altered_file_is_refused_when_mapped(kind, small_ivf, tmp_path):
    manifest = save(build_index(product_ids(2000), clustered(2000), kind=kind), tmp_path)
    path = tmp_path / manifest.index_file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        load_index(tmp_path, mmap=True)
    path.write_bytes(bytes(data[:-100]))
    with pytest.raises(IndexCorrupt, match="bytes but the manifest says"):
        load_index(tmp_path, mmap=True)


@pytest.mark.parametrize("mmap", [False, True])
def test_a_manifest_from_before_index_kinds_still_loads_as_flat(mmap, tmp_path):
    # given a manifest written before kinds, sizes and parameters were recorded
    xb = clustered(100)
    save(build_index(product_ids(100), xb, kind="flat"), tmp_path)
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    for key in ("index_kind", "index_params", "size"):
        del data[key]
    path.write_text(json.dumps(data))
    # when it is loaded
    index, manifest = load_index(tmp_path, mmap=mmap)
    # then it is an exact index, as every index was then
    assert manifest.index_kind == "flat" and manifest.index_params == {}
    assert search(index, xb[:1], 1)[1][0, 0] == product_ids(1)[0]


def test_a_manifest_whose_kind_disagrees_with_the_file_is_refused(tmp_path):
    save(build_index(product_ids(100), clustered(100), kind="hnsw"), tmp_path)
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    data["index_kind"] = "flat"
    path.write_text(json.dumps(data))
    with pytest.raises(IndexCorrupt, match="hnsw index but the manifest says flat"):
        load_index(tmp_path)
