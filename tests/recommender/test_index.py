"""Tests of the on-disk vector index (plain pytest, no Django)."""

import hashlib
import json
import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from recommender.index import (
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    IndexReader,
    Manifest,
    WriterLockTimeout,
    build_index,
    load_index,
    read_manifest,
    reconstruct_vectors,
    save_index,
    search,
    writer_lock,
)

MODEL = "efficientnet-lite0"
WEIGHTS = "sha256:abc123"


def normalised(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Return n random L2-normalised float32 vectors of dim d."""
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def product_ids(n: int) -> np.ndarray:
    """Return n distinct, non-positional product ids."""
    return np.arange(n, dtype=np.int64) * 7 + 1000


def saved(directory: Path, n: int = 50, d: int = 16, seed: int = 0) -> tuple[np.ndarray, Manifest]:
    """Build and save an index of n random vectors; return the vectors and the manifest."""
    xb = normalised(n, d, seed)
    manifest = save_index(
        build_index(product_ids(n), xb), directory, model_id=MODEL, weights_id=WEIGHTS
    )
    return xb, manifest


def rewrite_manifest(directory: Path, **changes: object) -> None:
    """Overwrite fields of the manifest on disk."""
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# ---------------------------------------------------------------------------- build and search


def test_search_agrees_with_exact_numpy_search() -> None:
    # given
    xb, xq = normalised(2000, 64, seed=1), normalised(20, 64, seed=2)
    ids = product_ids(2000)
    index = build_index(ids, xb)

    # when
    D, I = search(index, xq, k=10)

    # then
    scores = xq @ xb.T
    expected = np.argsort(-scores, axis=1)[:, :10]
    np.testing.assert_array_equal(I, ids[expected])
    np.testing.assert_allclose(D, np.take_along_axis(scores, expected, axis=1), atol=1e-5)


def test_search_returns_the_product_ids_passed_in_not_positions() -> None:
    # given
    xb = normalised(5, 8)
    ids = np.array([42, 7, 1001, 3, 99], dtype=np.int64)
    index = build_index(ids, xb)

    # when
    _, I = search(index, xb[2], k=1)

    # then
    assert I.tolist() == [[1001]]


def test_search_clamps_k_to_the_catalog_size_so_no_missing_ids_appear() -> None:
    # given
    index = build_index(product_ids(3), normalised(3, 8))

    # when
    D, I = search(index, normalised(2, 8, seed=5), k=10)

    # then
    assert I.shape == D.shape == (2, 3)
    assert (I >= 0).all()


def test_search_of_an_empty_index_returns_no_neighbours() -> None:
    # given
    index = build_index(np.empty(0, np.int64), np.empty((0, 8), np.float32), dim=8)

    # when
    D, I = search(index, normalised(1, 8)[0], k=5)

    # then
    assert D.shape == I.shape == (1, 0)


def test_search_rejects_queries_of_the_wrong_dim() -> None:
    index = build_index(product_ids(3), normalised(3, 8))
    with pytest.raises(ValueError, match="shape"):
        search(index, normalised(1, 9), k=1)


def test_build_index_casts_float64_vectors_to_float32() -> None:
    # given
    xb = normalised(4, 8).astype(np.float64)

    # when
    index = build_index(product_ids(4), xb)

    # then
    np.testing.assert_allclose(reconstruct_vectors(index, product_ids(4)), xb, atol=1e-6)


@pytest.mark.parametrize(
    ("ids", "xb", "message"),
    [
        (np.arange(3), np.ones(8, np.float32), "2-d"),
        (np.arange(3), np.ones((3, 2, 4), np.float32), "2-d"),
        (np.arange(4), np.ones((3, 8), np.float32), "4 ids for 3 vectors"),
        (np.arange(3).reshape(3, 1), np.ones((3, 8), np.float32), "1-d"),
        (np.array([1, 2, 1]), np.ones((3, 8), np.float32), "duplicate ids: \\[1\\]"),
        (np.array([1, -1, 2]), np.ones((3, 8), np.float32), "non-negative"),
        (np.arange(3), np.array([[0.0, np.nan], [1, 0], [0, 1]]), "NaN"),
        (np.arange(3), np.array([[0.0, np.inf], [1, 0], [0, 1]]), "NaN or infinite"),
        (np.empty(0, np.int64), np.empty((0, 8), np.float32), "explicit positive dim"),
    ],
)
def test_build_index_rejects_bad_input(ids: np.ndarray, xb: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_index(ids, xb)


def test_build_index_rejects_non_integer_ids() -> None:
    with pytest.raises(TypeError, match="integers"):
        build_index(np.array([1.0, 2.0]), normalised(2, 4))


def test_reconstruct_vectors_returns_the_stored_vectors_by_product_id() -> None:
    # given
    xb = normalised(10, 8)
    index = build_index(product_ids(10), xb)

    # when
    vectors = reconstruct_vectors(index, product_ids(10)[[3, 0]])

    # then
    np.testing.assert_array_equal(vectors, xb[[3, 0]])


def test_reconstruct_vectors_names_unknown_ids() -> None:
    index = build_index(product_ids(3), normalised(3, 8))
    with pytest.raises(KeyError, match="12345"):
        reconstruct_vectors(index, [12345])


# ---------------------------------------------------------------------------- save and load


def test_a_saved_index_loads_back_with_identical_search_results(tmp_path: Path) -> None:
    # given
    xb = normalised(300, 32)
    xq = normalised(5, 32, seed=9)
    index = build_index(product_ids(300), xb)
    save_index(index, tmp_path, model_id=MODEL, weights_id=WEIGHTS)

    # when
    loaded, manifest = load_index(tmp_path, expected_model_id=MODEL, expected_dim=32)

    # then
    D0, I0 = search(index, xq, k=7)
    D1, I1 = search(loaded, xq, k=7)
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_array_equal(D1, D0)
    np.testing.assert_array_equal(reconstruct_vectors(loaded, product_ids(300)[:3]), xb[:3])


def test_the_manifest_describes_the_saved_index(tmp_path: Path) -> None:
    # when
    _, manifest = saved(tmp_path, n=50, d=16)

    # then
    assert manifest == read_manifest(tmp_path)
    assert manifest.version == 1
    assert (manifest.model_id, manifest.weights_id) == (MODEL, WEIGHTS)
    assert (manifest.dim, manifest.count) == (16, 50)
    assert manifest.metric == "inner_product"
    assert manifest.index_file == "index-000001.faiss"
    assert len(manifest.checksum) == 64
    assert manifest.created_at.endswith("+00:00")
    assert Manifest.from_dict(manifest.to_dict()) == manifest


def test_each_save_increments_the_version_and_keeps_only_current_and_previous(
    tmp_path: Path,
) -> None:
    # when
    versions = [saved(tmp_path, seed=seed)[1].version for seed in range(4)]

    # then
    assert versions == [1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.glob("index-*.faiss")) == [
        "index-000003.faiss",
        "index-000004.faiss",
    ]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_version_number_is_never_reused_after_a_crashed_save(tmp_path: Path) -> None:
    # given: a writer that died after writing version 2's file but before its manifest
    saved(tmp_path)
    (tmp_path / "index-000002.faiss").write_bytes(b"partial")

    # when
    _, manifest = saved(tmp_path, seed=1)

    # then
    assert manifest.version == 3


def test_a_missing_directory_is_reported_as_not_found_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="manage.py demo"):
        load_index(tmp_path / "nope")
    assert read_manifest(tmp_path / "nope") is None


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_it_refuses_an_index_whose_checksum_does_not_match(tmp_path: Path, damage: str) -> None:
    # given
    _, manifest = saved(tmp_path)
    path = tmp_path / manifest.index_file
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    path.write_bytes(bytes(data))

    # when / then
    with pytest.raises(IndexCorrupt, match="checksum"):
        load_index(tmp_path)


def test_it_refuses_a_file_faiss_cannot_read_even_with_a_matching_checksum(
    tmp_path: Path,
) -> None:
    # given
    _, manifest = saved(tmp_path)
    garbage = b"not a faiss index"
    (tmp_path / manifest.index_file).write_bytes(garbage)
    rewrite_manifest(tmp_path, checksum=hashlib.sha256(garbage).hexdigest())

    # when / then
    with pytest.raises(IndexCorrupt, match="faiss cannot read"):
        load_index(tmp_path)


def test_it_refuses_a_manifest_pointing_to_a_missing_file(tmp_path: Path) -> None:
    # given
    _, manifest = saved(tmp_path)
    (tmp_path / manifest.index_file).unlink()

    # when / then
    with pytest.raises(IndexCorrupt, match="cannot be read"):
        load_index(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 1}',
        b'{"version": "1", "model_id": "m", "weights_id": "w", "dim": 2, "count": 0,'
        b' "checksum": "x", "index_file": "index-000001.faiss", "created_at": "t"}',
        b'{"version": 1, "model_id": "m", "weights_id": "w", "dim": 2, "count": 0,'
        b' "checksum": "x", "index_file": "../../etc/passwd", "created_at": "t"}',
    ],
)
def test_it_refuses_a_garbage_manifest(tmp_path: Path, content: bytes) -> None:
    # given
    (tmp_path / "manifest.json").write_bytes(content)

    # when / then
    with pytest.raises(IndexCorrupt, match="not a valid manifest"):
        load_index(tmp_path)


def test_it_refuses_an_index_whose_count_disagrees_with_the_manifest(tmp_path: Path) -> None:
    # given
    _, manifest = saved(tmp_path, n=50)
    rewrite_manifest(tmp_path, count=51)

    # when / then
    with pytest.raises(IndexCorrupt, match="50 vectors of dim 16, but the manifest says 51"):
        load_index(tmp_path)


def test_it_refuses_an_index_built_with_another_model(tmp_path: Path) -> None:
    # given
    saved(tmp_path)

    # when / then
    with pytest.raises(IndexMismatch, match=f"{MODEL}.*other-model.*rebuild"):
        load_index(tmp_path, expected_model_id="other-model")


def test_it_refuses_an_index_of_another_dim(tmp_path: Path) -> None:
    # given
    saved(tmp_path, d=16)

    # when / then
    with pytest.raises(IndexMismatch, match="dim 16.*dim 1280.*rebuild"):
        load_index(tmp_path, expected_dim=1280)


# ---------------------------------------------------------------------------- IndexReader


def test_the_reader_reports_a_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound):
        IndexReader(tmp_path).current()


def test_the_reader_picks_up_a_new_version_after_a_save(tmp_path: Path) -> None:
    # given
    saved(tmp_path, n=10)
    reader = IndexReader(tmp_path, expected_model_id=MODEL, check_interval=0)
    assert reader.current()[1].version == 1

    # when
    saved(tmp_path, n=20, seed=1)

    # then
    index, manifest = reader.current()
    assert (manifest.version, index.ntotal) == (2, 20)


def test_the_reader_only_rechecks_the_manifest_after_its_interval(tmp_path: Path) -> None:
    # given
    saved(tmp_path)
    reader = IndexReader(tmp_path, check_interval=3600)
    reader.current()

    # when
    saved(tmp_path, seed=1)

    # then
    assert reader.current()[1].version == 1
    reader.invalidate()
    assert reader.current()[1].version == 2


def test_the_reader_keeps_serving_the_old_version_when_the_new_file_is_corrupt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    xb, _ = saved(tmp_path, n=10)
    reader = IndexReader(tmp_path, check_interval=0)
    old_index, _ = reader.current()
    _, new = saved(tmp_path, n=20, seed=1)
    (tmp_path / new.index_file).write_bytes(b"\x00" * 100)

    # when
    with caplog.at_level(logging.WARNING, logger="recommender.index"):
        index, manifest = reader.current()
        reader.current()

    # then
    assert manifest.version == 1
    assert index is old_index
    assert search(index, xb[4], k=1)[1].tolist() == [[product_ids(10)[4]]]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot load version 2" in warnings[0].getMessage()


def test_the_reader_keeps_serving_when_the_manifest_becomes_garbage(tmp_path: Path) -> None:
    # given
    saved(tmp_path)
    reader = IndexReader(tmp_path, check_interval=0)
    reader.current()

    # when
    (tmp_path / "manifest.json").write_text("{oops")

    # then
    assert reader.current()[1].version == 1


# ---------------------------------------------------------------------------- writer lock


def _try_writer_lock(directory: str, outcome: "multiprocessing.Queue[str]") -> None:
    """Child process: report whether the writer lock could be taken within 0.2 s."""
    try:
        with writer_lock(directory, timeout=0.2):
            outcome.put("acquired")
    except WriterLockTimeout as exc:
        outcome.put(f"timeout: {exc}")


def _in_another_process(directory: Path) -> str:
    """Try the writer lock from a fresh process and return what happened."""
    ctx = multiprocessing.get_context("spawn")
    outcome = ctx.Queue()
    process = ctx.Process(target=_try_writer_lock, args=(str(directory), outcome))
    process.start()
    result = outcome.get(timeout=30)
    process.join(timeout=30)
    return result


def test_a_second_writer_in_another_process_times_out_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    # given
    with writer_lock(tmp_path):
        # when
        result = _in_another_process(tmp_path)

    # then
    assert result.startswith("timeout:")
    assert "0.2s" in result


def test_the_writer_lock_is_free_again_once_released(tmp_path: Path) -> None:
    # given
    with writer_lock(tmp_path, timeout=0):
        pass

    # when / then: flock conflicts between open files even within one process
    with (
        writer_lock(tmp_path, timeout=0),
        pytest.raises(WriterLockTimeout),
        writer_lock(tmp_path, timeout=0),
    ):
        pass
    with writer_lock(tmp_path, timeout=0):
        pass
