"""Every product's similar items for the default parameters, ranked before anyone asks.

A similar-items call by product with the default parameters (the key's own catalog, in stock,
the site's aesthetics weight, the default k or fewer) has one answer per catalog snapshot and
neighbour lists: its product's row of the lists (recommender.neighbours), less the candidates
the snapshot no longer shows, the first `wanted` of them blended with their photos' aesthetics
scores and sorted (recommender.services._similar). Worked out one call at a time, that was a
third of what a call cost beyond the keyed no-op (docs/benchmarks.md); worked out with numpy for
every row at once, in chunks of rows, it took 1.5 s per 100,000 products on 2 cores (the lists'
first reads from disk included), and a call then reads its product's ranked row.

Answers are made for one snapshot, known by its token. A catalog change makes a new snapshot
that lists the ids of the products now shown differently (`CatalogSnapshot.changes`): the
answers move on to it by dropping every row such an id is in (as the product or as one of its
neighbours); calls work those rows out as before until the next full ranking.

Plain numpy over the snapshot's columns and the lists' arrays (no Django).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recommender.ranking import AESTHETICS_SCALE

if TYPE_CHECKING:
    from recommender.catalog_store import CatalogSnapshot
    from recommender.neighbours import NeighbourLists

logger = logging.getLogger(__name__)

CHUNK = 4096  # rows ranked at once: (CHUNK, 64) arrays stay in the CPU's caches
UNANSWERED = -1


@dataclass(frozen=True)
class Defaults:
    """The parameters answers are ranked for (a call with others is worked out as it comes)."""

    k: int  # items kept per product: a call may ask for fewer
    wanted: int  # candidates the aesthetics blend reorders (services._similar)
    weight: float  # the aesthetics weight
    in_stock: bool = True


class DefaultAnswers:
    """For each row of one index version's neighbour lists: how many items a default call
    shows (UNANSWERED: work it out), their product ids, final scores, similarities and
    aesthetics scores (NaN: none), best first; valid for the snapshot with this token."""

    def __init__(
        self,
        lists: NeighbourLists,
        ntotal: int,
        defaults: Defaults,
        token: int,
        count: np.ndarray,
        ids: np.ndarray,
        final: np.ndarray,
        similarity: np.ndarray,
        aesthetics: np.ndarray,
    ) -> None:
        self.lists, self.ntotal, self.defaults, self.token = lists, ntotal, defaults, token
        self.count, self.ids = count, ids
        self.final, self.similarity, self.aesthetics = final, similarity, aesthetics

    def fits(self, lists: NeighbourLists, ntotal: int, defaults: Defaults) -> bool:
        """Whether these answers were ranked from these lists for these defaults."""
        return self.lists is lists and self.ntotal == ntotal and self.defaults == defaults

    def answered_share(self) -> float:
        """The share of rows answered here."""
        return float(np.count_nonzero(self.count >= 0)) / max(len(self.count), 1)

    def row(self, r: int, k: int) -> tuple[np.ndarray, list, list, list] | None:
        """Row r's best k (at most the defaults' k): product ids, then as lists final scores,
        similarities and aesthetics scores; None when the row is not answered here."""
        n = int(self.count[r])
        if n < 0:
            return None
        n = min(n, k)
        return (
            self.ids[r, :n],
            self.final[r, :n].tolist(),
            self.similarity[r, :n].tolist(),
            self.aesthetics[r, :n].tolist(),
        )

    def moved_to(self, snapshot: CatalogSnapshot) -> DefaultAnswers | None:
        """These answers for a later snapshot: rows that hold a product changed since are
        dropped. None when the snapshot does not know what changed since this one's."""
        changed = snapshot.changes.get(self.token)
        if changed is None:
            return None
        count = self.count.copy()
        if len(changed):
            touched = _touching(self.lists, changed)
            count[touched] = UNANSWERED
        return DefaultAnswers(
            self.lists,
            self.ntotal,
            self.defaults,
            snapshot.token,
            count,
            self.ids,
            self.final,
            self.similarity,
            self.aesthetics,
        )


def _touching(lists: NeighbourLists, changed: np.ndarray) -> np.ndarray:
    """Which rows hold one of these product ids, as the row's product or a neighbour."""
    top = max(int(changed.max()), int(lists.ids.max(initial=-1)))
    if top + 3 > 8 * len(lists.ids) + 65_536:  # ids too sparse for a table of flags
        return np.isin(lists.ids, changed) | np.isin(lists.lists["id"], changed).any(axis=1)
    # flagged[id + 1]; the last place (past every id given) stays False for ids out of range.
    flagged = np.zeros(top + 3, dtype=bool)
    flagged[changed + 1] = True
    touched = flagged[lists.ids + 1]
    for start in range(0, len(lists.ids), CHUNK):
        part = lists.lists["id"][start : start + CHUNK]
        touched[start : start + CHUNK] |= flagged.take(part + 1, mode="clip").any(axis=1)
    return touched


def rank_all(
    lists: NeighbourLists,
    snapshot: CatalogSnapshot,
    ntotal: int,
    defaults: Defaults,
) -> DefaultAnswers:
    """Every row's answer for this snapshot, a chunk of rows at a time."""
    rows, k = len(lists.ids), defaults.k
    count = np.full(rows, UNANSWERED, dtype=np.int16)
    ids = np.full((rows, k), -1, dtype=np.int64)
    final = np.zeros((rows, k), dtype=np.float64)
    similarity = np.zeros((rows, k), dtype=np.float64)
    aesthetics = np.zeros((rows, k), dtype=np.float64)
    width = lists.width
    # A call reads its row only when the search it stands for fits in it (services._similar:
    # the wanted candidates, the product itself and 8 more, or the whole index).
    if len(snapshot) and min(ntotal, defaults.wanted + 1 + 8) <= width:
        for start in range(0, rows, CHUNK):
            stop = min(start + CHUNK, rows)
            part = _rank(lists.ids[start:stop], lists.lists[start:stop], snapshot, ntotal, defaults)
            count[start:stop], ids[start:stop], final[start:stop] = part[:3]
            similarity[start:stop], aesthetics[start:stop] = part[3:]
    return DefaultAnswers(
        lists, ntotal, defaults, snapshot.token, count, ids, final, similarity, aesthetics
    )


def _rank(
    row_ids: np.ndarray,
    records: np.ndarray,
    snapshot: CatalogSnapshot,
    ntotal: int,
    d: Defaults,
) -> tuple[np.ndarray, ...]:
    """services._similar for these rows at once, with each row's product's merchant as the
    filter: (count, ids, final, similarity, aesthetics), the last four (rows, d.k)."""
    nid = records["id"]
    row_at = snapshot.positions(row_ids)
    at = snapshot.positions(nid)
    merchant = snapshot.merchant.take(np.maximum(row_at, 0))
    if d.in_stock:
        # The gate reads 2 * merchant + 1 for a product of that merchant in stock, and -2 at
        # position -1 (CatalogSnapshot.shown).
        keep = snapshot.gate.take(at) == (2 * merchant + 1)[:, None]
    else:
        keep = (at >= 0) & (snapshot.merchant.take(at) == merchant[:, None])
    keep &= nid != row_ids[:, None]
    place = np.cumsum(keep, axis=1)
    kept = place[:, -1]
    # The first `wanted` shown, as shown.head(wanted); a row with fewer is searched further
    # by the call unless its search already held the whole index.
    chosen = keep & (place <= d.wanted)
    shown = np.minimum(kept, d.wanted)
    answered = (row_at >= 0) & ((kept >= d.wanted) | (records.shape[1] >= ntotal))
    raw = np.where(chosen, snapshot.score.take(at), np.nan)
    similarity = records["sim"].astype(np.float64)
    final = _blend(similarity, raw, chosen, shown, d.weight)
    # Rows with a score that is not finite are left to their calls (which fail as JSON cannot
    # hold it; a NaN would also sort differently among the shown alone).
    answered &= (np.isfinite(final) | ~chosen).all(axis=1)
    final[~chosen] = -np.inf
    order = np.argsort(-final, axis=1, kind="stable")[:, : d.k]
    count = np.where(answered, np.minimum(shown, d.k), UNANSWERED).astype(np.int16)
    best = np.take_along_axis
    return (
        count,
        best(nid, order, axis=1),
        best(final, order, axis=1),
        best(similarity, order, axis=1),
        best(raw, order, axis=1),
    )


def _blend(
    similarity: np.ndarray, raw: np.ndarray, chosen: np.ndarray, shown: np.ndarray, weight: float
) -> np.ndarray:
    """ranking.blend of each row's chosen candidates, computed the same way (so the same
    floats): a photo without a score takes the median of its row's scored ones."""
    if weight == 0.0:
        return similarity.copy()
    known = chosen & ~np.isnan(raw)
    scored = np.count_nonzero(known, axis=1)
    a = raw.copy()
    for r in np.flatnonzero((scored > 0) & (scored < shown)).tolist():
        a[r, chosen[r] & ~known[r]] = np.median(raw[r, known[r]])
    a = np.minimum(np.maximum(a / AESTHETICS_SCALE, 0.0), 1.0)
    blended = (1.0 - weight) * similarity + weight * a
    # No scored candidate at all: the similarities unchanged.
    return np.where((scored > 0)[:, None], blended, similarity)


class AnswerKeeper:
    """A process's answers, kept in step with its catalog snapshot and neighbour lists.

    A new snapshot gets the answers moved on to it; new lists, or answers that moves have
    dropped rows from, are ranked again in full. That work runs in a thread of its own
    (`background`) or in the call that finds it due; meanwhile calls are worked out as they
    come. A full ranking waits for nine times as long as the last one took since it ended, so
    that a catalog that changes all the time costs at most a tenth of the process's time.
    """

    PAUSE = 9.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: DefaultAnswers | None = None
        self.partial = False  # rows were dropped since the last full ranking
        self.busy = False
        self.next_full = float("-inf")  # time.monotonic() from when a full ranking may run

    def get(
        self,
        lists: NeighbourLists,
        snapshot: CatalogSnapshot,
        ntotal: int,
        defaults: Defaults,
        background: bool = True,
    ) -> DefaultAnswers | None:
        """The answers for this snapshot and these lists, or None while they are not made."""
        current = self.current
        fits = current is not None and current.fits(lists, ntotal, defaults)
        if fits and current.token == snapshot.token:
            if self.partial and not self.busy and time.monotonic() >= self.next_full:
                self._start(lists, snapshot, ntotal, defaults, background)
            return current
        movable = fits and current.token in snapshot.changes
        if self.busy or not (movable or time.monotonic() >= self.next_full):
            return None
        self._start(lists, snapshot, ntotal, defaults, background)
        current = self.current
        fits = current is not None and current.fits(lists, ntotal, defaults)
        return current if fits and current.token == snapshot.token else None

    def clear(self) -> None:
        """Forget the answers (tests: ids repeat after a rollback)."""
        with self._lock:
            self.current, self.partial, self.next_full = None, False, float("-inf")

    def _start(self, lists, snapshot, ntotal, defaults, background: bool) -> None:
        with self._lock:
            if self.busy:
                return
            self.busy = True
        job = (lists, snapshot, ntotal, defaults)
        if background:
            threading.Thread(target=self._work, args=job, name="answers", daemon=True).start()
        else:
            self._work(*job)

    def _work(self, lists, snapshot, ntotal, defaults) -> None:
        try:
            current = self.current
            moved = None
            if current is not None and current.fits(lists, ntotal, defaults):
                moved = current.moved_to(snapshot)
            if moved is not None:
                # (Served at once, even with rows dropped, while a full ranking runs.)
                dropped = moved.answered_share() < current.answered_share()
                self.current, self.partial = moved, self.partial or dropped
            if (moved is None or self.partial) and time.monotonic() >= self.next_full:
                started = time.monotonic()
                answers = rank_all(lists, snapshot, ntotal, defaults)
                ended = time.monotonic()
                self.current, self.partial = answers, False
                self.next_full = ended + self.PAUSE * (ended - started)
                logger.info(
                    "Similar items of %s products ranked ahead in %.2f s",
                    len(lists.ids),
                    ended - started,
                )
        except Exception:
            logger.exception("Ranking similar items ahead failed; calls work them out meanwhile")
            self.next_full = time.monotonic() + 60.0
        finally:
            self.busy = False
