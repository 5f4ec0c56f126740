"""Each web process's copy of what similar-item lists show of every active product.

A similar-items call keeps the candidates that are still shown (active, in stock, in the
filters) and shows their cards. Reading those rows from the database was one query per call,
on cores that PostgreSQL shares with the web workers; the store keeps them in memory instead,
column by column (about 15 MiB per 100,000 products, loaded in about a second), and stays as
fresh as those reads were:

- every write of card data (a product, a category, a new photo score or live scorer) bumps a
  catalog version in Django's cache once its transaction commits (`catalog_changed`);
- each call reads that version (the partner API within its rate limits' round trip to Redis),
  and when it moved the store syncs before answering: products changed since the last sync,
  photos scored since, all categories, then a count of active products that puts back what
  a delta cannot show (a deleted product);
- it also syncs when LOOKALIKE_CATALOG_STORE_MAX_AGE seconds have passed, for a write that
  did not bump, and reloads everything for a new live aesthetics scorer and every 10 minutes.

A snapshot is never changed: a sync makes a new one and swaps it in, so threads that read the
old one meanwhile see it whole.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Hashable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import FloatField, OuterRef, Q, QuerySet, Subquery, Value
from django.utils import timezone

from recommender import columns
from recommender.models import PhotoScore
from shop.models import Category, Product

if TYPE_CHECKING:
    from recommender.services import SimilarFilters

logger = logging.getLogger(__name__)

VERSION_KEY = "catalog-version"
# Writers stamp updated_at (and a score's created_at) with their own clock before they commit:
# a delta reads back this far before the previous sync, for a transaction that committed just
# after that sync read, and for web hosts whose clocks differ a little.
MARGIN = dt.timedelta(seconds=10)
# What no delta shows (an update that set no updated_at, a transaction that took longer than
# the margin to commit) is put right by a full load this often, give or take a tenth so that
# workers started together do not stall together: a second of one worker's time per 100,000
# products.
RELOAD_SECONDS = 600
# What a similar-items list shows of a product (a Product built from these has no other field
# loaded: the rest load on access, as with QuerySet.only()).
CARD_FIELDS = (
    "id",
    "merchant_id",
    "sku",
    "title",
    "category_id",
    "price",
    "currency",
    "stock",
    "is_active",
    "image",
    "thumbnail",
    "image_hash",
    "image_width",
    "image_height",
)
CATEGORY_FIELDS = ("id", "name", "slug", "position")
# Where a photo's hash was cut out of its paths (no stored path holds a NUL).
HASH_MARK = "\0"


# ---------------------------------------------------------------------------- the version


def catalog_changed() -> None:
    """Tell every process's store that card data changed, once this transaction commits."""
    # Not before: a store that synced then would not see the change, and not be told again.
    # robust: the write is committed whatever happens to the bump (the max age still holds).
    transaction.on_commit(catalog_version_bump, robust=True)


def catalog_version_bump() -> None:
    """Move the catalog version on (what catalog_changed does when the transaction commits)."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        if not cache.add(VERSION_KEY, 1, timeout=None):
            cache.incr(VERSION_KEY)


def catalog_version() -> int:
    """The catalog version as stored in Django's cache (0 before the first change)."""
    return version_of(cache.get(VERSION_KEY))


def version_of(value) -> int:
    """A version read from the cache (a raw Redis value too) as an int; missing is 0."""
    return 0 if value is None else int(value)


def card_written(sender, **kwargs) -> None:
    """Signal receiver for saves and deletes of products, categories and photo scores."""
    catalog_changed()


# ---------------------------------------------------------------------------- reading rows


def card_rows(products: QuerySet[Product], scorer: str | None, *extra: str) -> QuerySet:
    """These products' card values (CARD_FIELDS, then `extra`) and their photos' scores.

    The score is the live scorer's (`scorer`, its version), None for a photo it has not scored.
    """
    score = Value(None, output_field=FloatField())
    if scorer is not None:
        score = Subquery(
            PhotoScore.objects.filter(
                image_hash=OuterRef("image_hash"), scorer_version=scorer
            ).values("score")[:1]
        )
    return products.annotate(aesthetics_score=score).values_list(
        *CARD_FIELDS, *extra, "aesthetics_score"
    )


class Card(NamedTuple):
    """What a similar-items list shows of a product: its card values and its category's."""

    values: tuple  # CARD_FIELDS
    category: tuple  # CATEGORY_FIELDS

    @classmethod
    def of(cls, product: Product) -> Card:
        """A product's card (its category is read if it was not)."""
        category = product.category
        values = tuple(getattr(product, name) for name in CARD_FIELDS)
        return cls(values, (category.pk, category.name, category.slug, category.position))

    def product(self) -> Product:
        """A Product with only these fields loaded (the others load on access), and category."""
        product = Product.from_db("default", CARD_FIELDS, self.values)
        product.category = Category.from_db("default", CATEGORY_FIELDS, self.category)
        return product


class StoredCard(NamedTuple):
    """A product's card as its place in a snapshot: made a Card only when it is read."""

    snapshot: CatalogSnapshot
    position: int

    def card(self) -> Card:
        """The card itself."""
        return self.snapshot.card(self.position)


def live_scorer_version() -> str | None:
    """The live aesthetics scorer's version, or None without one (lists go by similarity)."""
    from recommender.aesthetics.scoring import scorer_version
    from recommender.aesthetics.services import live_scorer_path

    path = live_scorer_path()
    try:
        return scorer_version(path)
    except FileNotFoundError:
        logger.warning("No aesthetics scorer at %s", path)
        return None


def _cents(price: Decimal) -> int:
    return int(price.scaleb(2))


def _price(cents: int) -> Decimal:
    # As the database gives it: two decimals (Decimal(0).scaleb(-2) would print as 0E-2).
    return Decimal(cents).scaleb(-2) if cents else Decimal("0.00")


# ---------------------------------------------------------------------------- the snapshot

# The columns of a snapshot: numbers (and a photo's SHA-256) in numpy arrays, text in the
# compact columns of recommender.columns.
NUMBERS = {
    "ids": np.int64,
    "merchant": np.int64,
    "category": np.int64,
    "cents": np.int64,
    "stock": np.int64,
    "width": np.int32,
    "height": np.int32,
    "score": np.float64,  # NaN: no score from the live scorer
}
# How many snapshots back a snapshot remembers what changed (one sync makes one to three).
LINEAGE = 8
_tokens = itertools.count(1)
HASH_LENGTH = 64  # hex characters of a SHA-256, kept as its 32 bytes
NO_DIGEST = bytes(HASH_LENGTH // 2)


class CatalogSnapshot:
    """Every active product's card at one moment, column by column in id order; never changed.

    A photo's hash is kept as its 32 bytes and its paths as templates with the hash cut out
    (the shop stores photos by hash, so a few hundred templates serve every product); a row
    whose photo fields do not fit that keeps them aside in `odd`. Categories are kept by id.
    """

    def __init__(self, table: dict, odd: dict[int, tuple], categories: dict, scorer) -> None:
        self.table = table
        self.ids: np.ndarray = table["ids"]
        self.merchant: np.ndarray = table["merchant"]
        self.category: np.ndarray = table["category"]
        self.cents: np.ndarray = table["cents"]
        self.stock: np.ndarray = table["stock"]
        self.score: np.ndarray = table["score"]
        self.odd = odd  # id -> (image hash, image, thumbnail)
        self.categories: dict[int, tuple] = categories  # id -> CATEGORY_FIELDS
        self.category_ids = {row[2]: pk for pk, row in categories.items()}
        self.scorer: str | None = scorer
        # What others derive from these rows, one value per position (the API's JSON of each
        # card), kept while the snapshot serves: a new snapshot takes the values of the rows
        # it keeps unchanged, so they are never older than the rows.
        self.derived: dict[Hashable, PositionCache] = {}
        self.where = columns.id_table(self.ids)
        self.gate = _gate(self.merchant, self.stock)
        # Which snapshot this is, and the ids of the products shown differently than in each of
        # the few before it (token -> ids, newest first; see _shown_differently): what was
        # worked out from an earlier snapshot holds here for every other product
        # (recommender.answers). Empty after a full load.
        self.token = next(_tokens)
        self.changes: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, product_id: int, merchant_id: int | None = None) -> int:
        """Where an active product is (of this merchant, if given); -1 when it is not here."""
        if self.where is not None:
            p = int(self.where[min(max(product_id + 1, 0), len(self.where) - 1)])
        else:
            p = int(np.searchsorted(self.ids, product_id))
            if p == len(self.ids) or self.ids[p] != product_id:
                p = -1
        if p < 0:
            return -1
        if merchant_id is not None and self.merchant[p] != merchant_id:
            return -1
        return p

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Where each of these product ids is (any shape; -1: not here). Not for an empty
        snapshot."""
        if self.where is not None:
            # Out of range (faiss's -1 included) clips to an end of the table: -1 there.
            return self.where.take(ids + 1, mode="clip")
        positions = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        positions[self.ids[positions] != ids] = -1
        return positions

    def shown(
        self, ids: np.ndarray, filters: SimilarFilters, exclude: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which of these ids are shown under the filters: (their indices, their positions)."""
        if not len(self.ids):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        positions = self.positions(ids)
        # Position -1 (not here) reads the gate's -2 or the last row below: `keep` is false.
        merchant = filters.merchant_id
        if filters.in_stock and merchant is not None:
            keep = self.gate.take(positions) == 2 * merchant + 1
        else:
            keep = positions >= 0
            if filters.in_stock:
                keep &= self.stock[positions] > 0
            if merchant is not None:
                keep &= self.merchant[positions] == merchant
        for product_id in exclude:
            keep &= ids != product_id
        if filters.category:
            keep &= self.category[positions] == self.category_ids.get(filters.category, -1)
        if filters.min_price is not None:
            least = (filters.min_price * 100).to_integral_value(ROUND_CEILING)
            keep &= self.cents[positions] >= int(least)
        if filters.max_price is not None:
            most = (filters.max_price * 100).to_integral_value(ROUND_FLOOR)
            keep &= self.cents[positions] <= int(most)
        indices = np.flatnonzero(keep)
        return indices, positions[indices]

    def cache(self, key: Hashable, limit: int) -> PositionCache | None:
        """The snapshot's cache of values derived from its rows under this key (None when the
        limit is 0); it holds at most `limit` of them."""
        cache = self.derived.get(key)
        if cache is None and limit > 0:
            cache = self.derived.setdefault(key, PositionCache(len(self.ids), limit))
        return cache

    def values(self, p: int) -> tuple:
        """The card values (CARD_FIELDS) of the product at position p."""
        table, pk = self.table, int(self.ids[p])
        photo = self.odd.get(pk) if self.odd else None
        if photo is None:
            image_hash = table["hashes"][p].tobytes().hex()
            image = table["image"][p].replace(HASH_MARK, image_hash, 1)
            photo = (image_hash, image, table["thumbnail"][p].replace(HASH_MARK, image_hash, 1))
        return (
            pk,
            int(self.merchant[p]),
            table["sku"][p],
            table["title"][p],
            int(self.category[p]),
            _price(int(self.cents[p])),
            table["currency"][p],
            int(self.stock[p]),
            True,
            photo[1],
            photo[2],
            photo[0],
            int(table["width"][p]),
            int(table["height"][p]),
        )

    def card(self, p: int) -> Card:
        """The card of the product at position p."""
        return Card(self.values(p), self.categories[int(self.category[p])])

    def merged(self, rows: list[tuple], categories: dict) -> CatalogSnapshot:
        """A new snapshot: these products' rows (inactive ones dropped) replace theirs here."""
        changed = np.array([row[0] for row in rows], dtype=np.int64)
        kept = np.flatnonzero(~np.isin(self.ids, changed))
        added, odd = _table([row for row in rows if row[8]])
        return self._with(kept, added, odd, categories)

    def without(self, gone: np.ndarray) -> CatalogSnapshot:
        """A new snapshot without these product ids."""
        kept = np.flatnonzero(~np.isin(self.ids, gone))
        return self._with(kept, *_table([]), self.categories)

    def _with(self, kept: np.ndarray, added: dict, odd: dict, categories: dict) -> CatalogSnapshot:
        # The kept rows and the added ones, taken in id order from both one after another.
        rows = np.concatenate([kept, len(self.ids) + np.arange(len(added["ids"]))])
        order = rows[np.argsort(np.concatenate([self.ids[kept], added["ids"]]), kind="stable")]
        table = {
            name: columns.take(columns.concat([column, added[name]]), order)
            for name, column in self.table.items()
        }
        if self.odd:
            survivors = set(self.ids[kept].tolist())
            odd = {**{pk: row for pk, row in self.odd.items() if pk in survivors}, **odd}
        snapshot = CatalogSnapshot(table, odd, categories, self.scorer)
        changed = self._shown_differently(kept, added)
        snapshot.changes = {self.token: changed}
        for token, ids in list(self.changes.items())[: LINEAGE - 1]:
            snapshot.changes[token] = np.union1d(ids, changed)
        if categories == self.categories:  # else a card's category may read differently
            for key, cache in self.derived.items():
                snapshot.derived[key] = cache.taken(order, len(added["ids"]))
        return snapshot

    def _shown_differently(self, kept: np.ndarray, added: dict) -> np.ndarray:
        """The ids of the rows not kept and the rows added whose presence, merchant, stock (in
        or out) or aesthetics score differ: what decides whether and where a product shows."""
        dropped = np.ones(len(self.ids), dtype=bool)
        dropped[kept] = False
        old = np.flatnonzero(dropped)
        both, i, j = np.intersect1d(
            self.ids[old], added["ids"], assume_unique=True, return_indices=True
        )
        old = old[i]
        score, new_score = self.score[old], added["score"][j]
        same = (
            (self.merchant[old] == added["merchant"][j])
            & ((self.stock[old] > 0) == (added["stock"][j] > 0))
            & ((score == new_score) | (np.isnan(score) & np.isnan(new_score)))
        )
        return np.setdiff1d(np.union1d(self.ids[dropped], added["ids"]), both[same])

    def memory_bytes(self) -> int:
        """What the snapshot holds in memory, roughly (its columns and rows kept aside)."""
        odd = sum(sum(map(sys.getsizeof, row)) + 100 for row in self.odd.values())
        lookups = self.gate.nbytes + (0 if self.where is None else self.where.nbytes)
        return sum(column.nbytes for column in self.table.values()) + odd + lookups


def _gate(merchant: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """By position, 2 * merchant + (1 if in stock else 0), then -2 after the last row.

    The default filters (the key's merchant, in stock) read a candidate in one gather and look
    for 2 * merchant + 1: an odd value, which neither a product out of stock nor the position
    -1 (not here: it reads the -2) has, whatever the merchant's id."""
    gate = np.empty(len(merchant) + 1, np.int64)
    np.add(merchant * 2, stock > 0, out=gate[:-1])
    gate[-1] = -2
    return gate


class PositionCache:
    """Values derived from a snapshot's rows, by position (None: not made yet); at most
    `limit` of them are kept."""

    def __init__(self, size: int, limit: int, values: list | None = None) -> None:
        self.values: list = [None] * size if values is None else values
        self.limit = limit
        self.filled = 0 if values is None else size - values.count(None)

    def put(self, position: int, value) -> None:
        """Keep a position's value, if there is room."""
        if self.filled < self.limit and self.values[position] is None:
            self.values[position] = value
            self.filled += 1

    def taken(self, order: np.ndarray, added: int) -> PositionCache:
        """The cache of a snapshot whose rows are these rows of this one, then `added` new
        ones (order: the new snapshot's rows, as positions in that concatenation)."""
        values = self.values + [None] * added
        return PositionCache(len(order), self.limit, [values[p] for p in order.tolist()])


def _table(rows: list[tuple]) -> tuple[dict, dict[int, tuple]]:
    """Card rows (as card_rows reads them) as a table of columns, and the photo fields aside."""
    by_field = list(zip(*rows, strict=True)) if rows else [()] * (len(CARD_FIELDS) + 1)
    (ids, merchant, sku, title, category, price, currency, stock, _active, image, thumbnail,
     hashes, width, height, score) = by_field  # fmt: skip
    digests = list(map(_digest, hashes, image, thumbnail))
    table = {
        name: np.array(values, dtype=dtype)
        for name, dtype, values in (
            ("ids", NUMBERS["ids"], ids),
            ("merchant", NUMBERS["merchant"], merchant),
            ("category", NUMBERS["category"], category),
            ("cents", NUMBERS["cents"], [_cents(value) for value in price]),
            ("stock", NUMBERS["stock"], stock),
            ("width", NUMBERS["width"], width),
            ("height", NUMBERS["height"], height),
            ("score", NUMBERS["score"], score),
        )  # fmt: skip
    }
    table["hashes"] = np.frombuffer(
        b"".join(digest or NO_DIGEST for digest in digests), dtype=np.uint8
    ).reshape(-1, len(NO_DIGEST))
    table["sku"], table["title"] = columns.Strings.of(sku), columns.Strings.of(title)
    table["currency"] = columns.Repeated.of(currency)
    for name, paths in (("image", image), ("thumbnail", thumbnail)):
        table[name] = columns.Repeated.of(
            path.replace(image_hash, HASH_MARK, 1) if digest else ""
            for path, image_hash, digest in zip(paths, hashes, digests, strict=True)
        )
    odd = {
        pk: (image_hash, path, thumb)
        for pk, image_hash, path, thumb, digest in zip(
            ids, hashes, image, thumbnail, digests, strict=True
        )
        if digest is None
    }
    return table, odd


def _digest(image_hash: str, image: str, thumbnail: str) -> bytes | None:
    """The hash's bytes when the row's photo fields fit the columns: SHA-256 hex in both paths."""
    if len(image_hash) != HASH_LENGTH or image_hash not in image or image_hash not in thumbnail:
        return None
    if HASH_MARK in image or HASH_MARK in thumbnail:
        return None
    try:
        digest = bytes.fromhex(image_hash)
    except ValueError:
        return None
    return digest if digest.hex() == image_hash else None


def _snapshot(table: dict, odd: dict, categories: dict, scorer: str | None) -> CatalogSnapshot:
    """A table's rows in id order as a snapshot."""
    ids = table["ids"]
    if not np.all(ids[1:] > ids[:-1]):
        order = np.argsort(ids, kind="stable")
        table = {name: columns.take(column, order) for name, column in table.items()}
    return CatalogSnapshot(table, odd, categories, scorer)


def _categories() -> dict[int, tuple]:
    return {row[0]: row for row in Category.objects.values_list(*CATEGORY_FIELDS)}


LOAD_CHUNK = 5000


def snapshot_load(scorer: str | None) -> CatalogSnapshot:
    """Every active product's card (and score from this scorer), read in one pass."""
    started = time.perf_counter()
    rows = card_rows(Product.objects.filter(is_active=True).order_by("pk"), scorer)
    chunks, odd = [], {}
    # A chunk at a time: 100,000 rows as Python objects would take 150 MiB at once.
    rows = rows.iterator(chunk_size=LOAD_CHUNK)
    while chunk := list(islice(rows, LOAD_CHUNK)):
        table, chunk_odd = _table(chunk)
        chunks.append(table)
        odd.update(chunk_odd)
    if not chunks:
        chunks.append(_table([])[0])
    table = {name: columns.concat([chunk[name] for chunk in chunks]) for name in chunks[0]}
    snapshot = _snapshot(table, odd, _categories(), scorer)
    logger.info(
        "Catalog store: %s products loaded in %.2f s (%.1f MiB)",
        len(snapshot),
        time.perf_counter() - started,
        snapshot.memory_bytes() / 2**20,
    )
    return snapshot


# ---------------------------------------------------------------------------- the store


class CatalogStore:
    """A process's snapshot, synced when the catalog version moves or the snapshot ages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: CatalogSnapshot | None = None
        self._version: tuple | None = None  # the versions it was last synced for
        self._synced_at = 0.0  # time.time() when the last sync began
        self._reload_at = 0.0  # ... and when the next sync loads everything
        self._since = timezone.now()  # the last sync's start as a datetime, for the next delta

    def snapshot(self, version: int | None = None, index_version: int = 0) -> CatalogSnapshot:
        """The snapshot, synced first if the catalog version is not the one it was synced at.

        `version` is the catalog version the caller has just read (read here when None). A new
        index version syncs too: the products it brings are in the store by then.
        """
        version = (catalog_version() if version is None else version, index_version)
        # Fresh first, then the snapshot: a sync swaps the snapshot in before the versions.
        if self._fresh(version) and (snapshot := self._snapshot) is not None:
            return snapshot
        with self._lock:
            # Another thread may have synced while this one waited.
            if self._snapshot is None or not self._fresh(version):
                self._sync(version)
            return self._snapshot

    def _fresh(self, version: tuple) -> bool:
        age = time.time() - self._synced_at
        # A clock set back counts as old.
        return version == self._version and 0 <= age < settings.LOOKALIKE_CATALOG_STORE_MAX_AGE

    def _sync(self, version: tuple) -> None:
        started, since = time.time(), timezone.now()
        scorer = live_scorer_version()
        if (
            self._snapshot is None
            or scorer != self._snapshot.scorer
            or not 0 <= self._reload_at - started <= 1.1 * RELOAD_SECONDS
        ):
            self._snapshot = snapshot_load(scorer)
            for fill in _after_load:
                fill(self._snapshot)
            self._reload_at = started + RELOAD_SECONDS * random.uniform(0.9, 1.1)
        else:
            self._snapshot = _synced(self._snapshot, self._since - MARGIN, scorer)
        self._version, self._synced_at, self._since = version, started, since

    def clear(self) -> None:
        """Forget the snapshot: the next call loads it again."""
        with self._lock:
            self._snapshot, self._version = None, None


def _synced(snapshot: CatalogSnapshot, since: dt.datetime, scorer: str | None) -> CatalogSnapshot:
    """The snapshot with what changed since then: products, photo scores, categories, deletes."""
    changed = Q(updated_at__gte=since)
    if scorer is not None:
        # Read first, so that both parts of the query below can use their index.
        scored = PhotoScore.objects.filter(scorer_version=scorer, created_at__gte=since)
        changed |= Q(image_hash__in=list(scored.values_list("image_hash", flat=True)))
    rows = list(card_rows(Product.objects.filter(changed).order_by(), scorer))
    categories = _categories()
    if rows or categories != snapshot.categories:
        snapshot = snapshot.merged(rows, categories)
    active = Product.objects.filter(is_active=True)
    if active.count() != len(snapshot):
        snapshot = _reconciled(snapshot, active, scorer)
    return snapshot


def _reconciled(snapshot: CatalogSnapshot, active: QuerySet[Product], scorer) -> CatalogSnapshot:
    """The snapshot holding exactly the active products: deleted ones out, missed ones in."""
    ids = np.fromiter(active.values_list("pk", flat=True).iterator(), dtype=np.int64)
    gone = np.setdiff1d(snapshot.ids, ids)
    missing = np.setdiff1d(ids, snapshot.ids).tolist()
    if len(gone):
        snapshot = snapshot.without(gone)
    rows = []
    for start in range(0, len(missing), 1000):
        rows += card_rows(active.filter(pk__in=missing[start : start + 1000]), scorer)
    if rows:
        snapshot = snapshot.merged(rows, snapshot.categories)
    logger.info("Catalog store: %s products dropped, %s added", len(gone), len(missing))
    return snapshot


_store = CatalogStore()
# Run on every snapshot a process loads in full (as it starts, then every RELOAD_SECONDS),
# which no earlier snapshot passes anything on to: the API's JSON of every card is written then.
_after_load: list[Callable[[CatalogSnapshot], object]] = []


def after_load(fill: Callable[[CatalogSnapshot], object]) -> None:
    """Have `fill` run on each snapshot this process loads in full, before it serves."""
    if fill not in _after_load:
        _after_load.append(fill)


def catalog_snapshot(version: int | None = None, index_version: int = 0) -> CatalogSnapshot | None:
    """This process's catalog snapshot, fresh for these versions; None when the store is off."""
    if not settings.LOOKALIKE_CATALOG_STORE:
        return None
    return _store.snapshot(version, index_version)


def store_clear() -> None:
    """Forget this process's snapshot (tests: ids repeat after a rollback)."""
    _store.clear()
