"""Each indexed product's nearest neighbours, searched once per index version and kept on disk.

A similar-items call by product searches the index with a vector the index already holds, so
its answer is known as soon as the version is written. Searching every product once, in
batches on all cores, took 33 s per 100,000 products (IVF, 2 cores: about half of what as many
single searches cost); a call then reads its product's row (a slice of a memory-mapped file,
shared by every web process) instead of searching, and falls back to a search only when its
filters leave too few of the row's products (or it asks for more than a row holds).

A row is what ``index.search(xq, COUNT)`` returned for the product's own vector, the product
itself included, so a call that uses it gets the answer a search would have given: for flat
and IVF indexes the same (a longer search of those only appends, unless it probes more IVF
lists, which can only find closer products), and for HNSW as the graph walk with that many
results found them.

Plain numpy + faiss (no Django), like ``recommender.index``. Layout beside the index::

    neighbours-000007-<sha>.npy        # (products, COUNT) records: neighbour id, similarity
    neighbours-000007-<sha>.rows.npy   # the product id of each row, ascending; written LAST

(<sha>: the start of the index file's checksum, so that lists are never taken for another
index that got the same version number, in a directory emptied and filled again.)

Lists of versions before the previous one are deleted once a version's lists are stored.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from recommender import columns
from recommender import index as vector_index

logger = logging.getLogger(__name__)

# Neighbours kept per product, itself included: a list of 12 with the aesthetics blend
# reorders the best 50 of them, and a few of those may be out of stock.
COUNT = 64
RECORD = np.dtype([("id", "<i8"), ("sim", "<f4")])
_FILE_RE = re.compile(r"^neighbours-(\d+)-[0-9a-f]+(\.rows)?\.npy$")


class Stale(Exception):
    """A newer index version was written while this one's lists were being built."""


def lists_path(directory: Path, version: int, checksum: str) -> Path:
    """Where the neighbour lists of an index version (and file checksum) are."""
    return Path(directory) / f"neighbours-{version:06d}-{checksum[:16]}.npy"


def rows_path(directory: Path, version: int, checksum: str) -> Path:
    """Where the product id of each row of those lists is."""
    return Path(directory) / f"neighbours-{version:06d}-{checksum[:16]}.rows.npy"


def neighbours_search(
    index: faiss.Index,
    count: int = COUNT,
    *,
    chunk: int = 2048,
    progress: Callable[[int], None] | None = None,
    current: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(row ids ascending, their `count` nearest neighbours): every product searched once.

    `current` is asked between chunks; when it says False the build stops (Stale).
    """
    ids = np.sort(vector_index.indexed_ids(index))
    k = min(count, index.ntotal)
    lists = np.empty((len(ids), k), dtype=RECORD)
    for start in range(0, len(ids), chunk):
        if current is not None and not current():
            raise Stale("a newer index version was written")
        part = ids[start : start + chunk]
        D, I = vector_index.search(index, index.reconstruct_batch(part), k)
        lists["id"][start : start + len(part)] = I
        lists["sim"][start : start + len(part)] = D
        if progress is not None:
            progress(len(part))
    return ids, lists


def neighbours_save(
    directory: Path, version: int, checksum: str, ids: np.ndarray, lists: np.ndarray
) -> None:
    """Write a version's lists atomically (the rows file last: readers look for it)."""
    directory = Path(directory)
    _save_atomic(lists_path(directory, version, checksum), lists)
    _save_atomic(rows_path(directory, version, checksum), ids)


def neighbours_prune(directory: Path, older_than: int) -> None:
    """Delete the lists of index versions before this one."""
    for name in vector_index._listdir(Path(directory)):
        match = _FILE_RE.match(name)
        if match and int(match.group(1)) < older_than:
            (Path(directory) / name).unlink(missing_ok=True)


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class NeighbourLists:
    """One index version's lists, memory-mapped read-only."""

    def __init__(self, ids: np.ndarray, lists: np.ndarray) -> None:
        self.ids = ids
        self.lists = lists
        # A product's row by a table indexed by its id (one read, where binary search read
        # 17 places of the mapped ids), while the ids are dense enough for one.
        self.where = columns.id_table(ids)

    @classmethod
    def open(cls, directory: Path, version: int, checksum: str) -> NeighbourLists | None:
        """The lists of the index version with this file checksum, or None when they are not
        (or not wholly) written."""
        try:
            rows, path = (
                rows_path(directory, version, checksum),
                lists_path(directory, version, checksum),
            )
            ids = np.load(rows, mmap_mode="r", allow_pickle=False)
            lists = np.load(path, mmap_mode="r", allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError) as exc:
            if not isinstance(exc, FileNotFoundError):
                logger.warning("Ignoring the neighbour lists of index version %s: %s", version, exc)
            return None
        if (
            ids.ndim != 1
            or lists.ndim != 2
            or lists.dtype != RECORD
            or ids.dtype != np.int64
            or len(ids) != len(lists)
        ):
            logger.warning("Ignoring the neighbour lists of index version %s: bad shape", version)
            return None
        # Plain arrays over the same mapped pages: np.memmap's subclass hooks ran on every
        # slice of a call's row and cost more than reading it.
        return cls(ids.view(np.ndarray), lists.view(np.ndarray))

    @property
    def width(self) -> int:
        """Neighbours per product (the product itself included)."""
        return self.lists.shape[1]

    def row_number(self, product_id: int) -> int:
        """Which row is a product's (-1: it has none)."""
        if self.where is not None:
            return int(self.where[min(max(product_id + 1, 0), len(self.where) - 1)])
        r = int(self.ids.searchsorted(product_id))
        return r if r < len(self.ids) and self.ids[r] == product_id else -1

    def row(self, product_id: int) -> np.ndarray | None:
        """A product's neighbours (records: id, sim) best first, or None when it has no row."""
        r = self.row_number(product_id)
        return self.lists[r] if r >= 0 else None


class NeighbourReader:
    """A process's lists for the version it serves; a missing file is looked for again later."""

    def __init__(self, directory: Path, check_interval: float = 1.0) -> None:
        self.directory = Path(directory)
        self.check_interval = check_interval
        self._lock = threading.Lock()
        # ((version, checksum), its lists or None), swapped as one: a thread never pairs one
        # version's lists with another's number.
        self._loaded: tuple[tuple[int, str], NeighbourLists | None] | None = None
        self._checked_at = float("-inf")

    def lists(self, version: int, checksum: str) -> NeighbourLists | None:
        """The lists of this index version (and file checksum), None while not written."""
        key = (version, checksum)
        loaded = self._loaded
        if loaded is not None and loaded[0] == key and loaded[1] is not None:
            return loaded[1]
        with self._lock:
            now = time.monotonic()
            loaded = self._loaded
            if loaded is None or loaded[0] != key or now - self._checked_at >= self.check_interval:
                self._checked_at = now
                found = NeighbourLists.open(self.directory, version, checksum)
                loaded = self._loaded = (key, found)
            return loaded[1]
