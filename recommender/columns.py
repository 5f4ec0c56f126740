"""Compact in-memory columns of strings, for tables of many rows (no Django).

A Python string costs about 50 bytes besides its characters, and a list 8 bytes more per slot;
100,000 products' titles and SKUs held that way cost three times their text, and their many
small objects keep the process's memory fragmented. These keep one buffer (or a few distinct
values) and numpy offsets (or codes) instead. Every column type here, and numpy arrays, is
taken from with `take` and joined with `concat`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class Strings:
    """Distinct strings in one UTF-8 buffer, with the end offset of each."""

    __slots__ = ("data", "ends")

    def __init__(self, data: bytes, ends: np.ndarray) -> None:
        self.data = data
        self.ends = ends

    @classmethod
    def of(cls, values: Iterable[str]) -> Strings:
        """These strings, in order."""
        encoded = [value.encode() for value in values]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        return cls(b"".join(encoded), np.cumsum(lengths))

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        return self.data[self.ends[i - 1] if i else 0 : self.ends[i]].decode()

    def starts(self) -> np.ndarray:
        """The start offset of each string."""
        return np.concatenate([[0], self.ends[:-1]]).astype(np.int64)

    def take(self, indices: np.ndarray) -> Strings:
        """The strings at these indices, in their order."""
        if not len(indices):
            return Strings(b"", np.zeros(0, np.int64))
        starts = self.starts()[indices]
        lengths = self.ends[indices] - starts
        # Runs of consecutive strings are copied as one slice: a merge keeps most rows in order.
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        first = np.concatenate([[0], breaks])
        last = np.concatenate([breaks, [len(indices)]]) - 1
        slices = zip(starts[first].tolist(), (starts[last] + lengths[last]).tolist(), strict=True)
        return Strings(b"".join(self.data[start:end] for start, end in slices), np.cumsum(lengths))

    @staticmethod
    def concat(parts: Sequence[Strings]) -> Strings:
        """These columns one after another."""
        offsets = np.cumsum([0] + [len(part.data) for part in parts[:-1]])
        ends = [part.ends + offset for part, offset in zip(parts, offsets, strict=True)]
        data = b"".join(part.data for part in parts)
        return Strings(data, np.concatenate(ends) if ends else np.zeros(0, np.int64))

    @property
    def nbytes(self) -> int:
        return len(self.data) + self.ends.nbytes


class Repeated:
    """Strings of few distinct values (currencies, path templates): each once, a code per row."""

    __slots__ = ("values", "codes")

    def __init__(self, values: list[str], codes: np.ndarray) -> None:
        self.values = values
        self.codes = codes

    @classmethod
    def of(cls, values: Iterable[str]) -> Repeated:
        """These strings, in order."""
        code_of: dict[str, int] = {}
        codes = [code_of.setdefault(value, len(code_of)) for value in values]
        return cls(list(code_of), np.array(codes, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str:
        return self.values[self.codes[i]]

    def take(self, indices: np.ndarray) -> Repeated:
        """The strings at these indices, in their order."""
        return Repeated(self.values, self.codes[indices])

    @staticmethod
    def concat(parts: Sequence[Repeated]) -> Repeated:
        """These columns one after another (their values merged)."""
        code_of: dict[str, int] = {}
        codes = []
        for part in parts:
            mapping = np.array(
                [code_of.setdefault(value, len(code_of)) for value in part.values], dtype=np.int32
            )
            codes.append(mapping[part.codes] if len(part.codes) else part.codes)
        return Repeated(list(code_of), np.concatenate(codes) if codes else np.zeros(0, np.int32))

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + sum(len(value) + 50 for value in self.values)


def take(column, indices: np.ndarray):
    """The rows of a column (numpy array, Strings or Repeated) at these indices."""
    return column[indices] if isinstance(column, np.ndarray) else column.take(indices)


def concat(columns: Sequence):
    """Columns of one type one after another."""
    if isinstance(columns[0], np.ndarray):
        return np.concatenate(columns)
    return type(columns[0]).concat(columns)


# Positions are looked up in a table indexed by product id while ids are no sparser than this
# (most are: they count up from 1). A similar-items call looks up 64 candidates: among 100,000
# products a binary search took 12 us for them, the table 2 (ids of random rows, one process).
ID_TABLE_MAX_SPARSENESS = 8


def id_table(ids: np.ndarray) -> np.ndarray | None:
    """For ascending ids, the position of each id at [id + 1], -1 for ids not here (and at both
    ends, for ids out of range); None when ids are too sparse for a table (binary search then)."""
    top = int(ids[-1]) if len(ids) else -1
    if not len(ids) or ids[0] < 0 or top + 3 > ID_TABLE_MAX_SPARSENESS * len(ids) + 65_536:
        return None
    table = np.full(top + 3, -1, dtype=np.int32)
    table[ids + 1] = np.arange(len(ids), dtype=np.int32)
    return table
