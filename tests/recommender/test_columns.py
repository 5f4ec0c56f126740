"""Compact string columns: what is taken and joined reads back as the strings put in."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.columns import Repeated, Strings, concat, take

WORDS = ["boot", "", "Été ‘Rowan’", "sneaker", "B000001", "日本", "a" * 300, "", "x"]


@pytest.mark.parametrize("kind", [Strings, Repeated])
def test_a_column_reads_back_its_strings(kind) -> None:
    column = kind.of(WORDS)
    assert len(column) == len(WORDS)
    assert [column[i] for i in range(len(column))] == WORDS


@pytest.mark.parametrize("kind", [Strings, Repeated])
@pytest.mark.parametrize(
    "indices",
    [[], [0], [8, 0], [3, 4, 5], [1, 1, 7], list(range(9)), [8, 7, 6, 5, 4, 3, 2, 1, 0], [2, 6]],
)
def test_taking_rows_keeps_their_strings_in_that_order(kind, indices) -> None:
    taken = take(kind.of(WORDS), np.array(indices, dtype=np.int64))
    assert [taken[i] for i in range(len(taken))] == [WORDS[i] for i in indices]


@pytest.mark.parametrize("kind", [Strings, Repeated])
def test_joined_columns_read_as_one(kind) -> None:
    parts = [kind.of(WORDS[:3]), kind.of([]), kind.of(WORDS[3:]), kind.of(["boot", "new"])]
    joined = concat(parts)
    assert [joined[i] for i in range(len(joined))] == [*WORDS, "boot", "new"]


def test_numpy_columns_are_taken_and_joined_alike() -> None:
    column = np.arange(5) * 10
    assert take(column, np.array([4, 0])).tolist() == [40, 0]
    assert concat([column[:2], column[3:]]).tolist() == [0, 10, 30, 40]


def test_repeated_strings_are_kept_once() -> None:
    column = Repeated.of(["EUR", "CHF", "EUR", "EUR"])
    assert column.values == ["EUR", "CHF"] and column.codes.tolist() == [0, 1, 0, 0]
