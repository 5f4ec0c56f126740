"""Embedding products, maintaining the index, and finding similar products."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache, partial

import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import Q, QuerySet
from django.dispatch import receiver
from PIL import Image

from embeddings import Extractor
from embeddings.images import decode_photos
from embeddings.preprocess import crop_box
from recommender import index as vector_index
from recommender import ranking
from recommender.answers import AnswerKeeper, Defaults
from recommender.catalog_store import (
    CARD_FIELDS,
    Card,
    CatalogSnapshot,
    StoredCard,
    card_rows,
    catalog_snapshot,
    live_scorer_version,
)
from recommender.embedding import (
    ModelUnavailable,
    catalog_decode_side,
    current_extractor,
    extractor_for,
)
from recommender.models import ImageVector
from recommender.neighbours import (
    NeighbourLists,
    NeighbourReader,
    Stale,
    neighbours_prune,
    neighbours_save,
    neighbours_search,
)
from recommender.postprocessing import postprocessor_fit, serving_postprocessor
from shop.images import read_stored
from shop.models import EmbeddingStatus, Product

logger = logging.getLogger(__name__)


class ProductNotEmbedded(Exception):
    """A product's photo has no vector and cannot be given one (its reason is the message)."""


@dataclass
class EmbedReport:
    embedded: int = 0
    reused: int = 0
    failed: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"embedded": self.embedded, "reused": self.reused, "failed": self.failed}


@dataclass(frozen=True)
class SimilarFilters:
    """Which products may appear in a similar-items list (besides being active)."""

    category: str | None = None
    merchant_id: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = True

    def q(self) -> Q:
        """These filters as one condition on products."""
        condition = Q()
        if self.in_stock:
            condition &= Q(stock__gt=0)
        if self.category:
            condition &= Q(category__slug=self.category)
        if self.merchant_id is not None:
            condition &= Q(merchant_id=self.merchant_id)
        if self.min_price is not None:
            condition &= Q(price__gte=self.min_price)
        if self.max_price is not None:
            condition &= Q(price__lte=self.max_price)
        return condition

    def apply(self, products: QuerySet[Product]) -> QuerySet[Product]:
        """These filters on a queryset of active products."""
        return products.filter(self.q())


NO_FILTERS = SimilarFilters()


@dataclass(frozen=True)
class Catalog:
    """Where a similar-items search's product is looked up: active products, one merchant's."""

    merchant_id: int | None = None

    def q(self) -> Q:
        """The condition a product of this catalog meets."""
        condition = Q(is_active=True)
        if self.merchant_id is not None:
            condition &= Q(merchant_id=self.merchant_id)
        return condition


WHOLE_CATALOG = Catalog()


@dataclass
class SimilarItem:
    """A product in a similar-items list: final score orders the list.

    Its card is given, or kept as its place in the catalog store (`StoredCard`) and read on
    first use: the API writes a stored card's JSON from its cache without it. (Not frozen:
    a frozen dataclass takes three times as long to make, and a call makes twelve or more.)
    """

    source: Card | StoredCard
    score: float
    similarity: float
    aesthetics: float | None = None

    @cached_property
    def card(self) -> Card:
        """What the list shows of the product."""
        source = self.source
        return source.card() if isinstance(source, StoredCard) else source

    @cached_property
    def product(self) -> Product:
        """The product as a model object (made on first use: the API needs only its card)."""
        return self.card.product()


@dataclass(frozen=True)
class RankedItems:
    """Similar items ranked ahead (recommender.answers), as columns: their cards' places in the
    catalog store's snapshot, final scores, similarities and aesthetics scores (NaN: none).
    The API writes them as they are; others get SimilarItems made from them."""

    snapshot: CatalogSnapshot
    positions: list[int]
    score: list[float]
    similarity: list[float]
    aesthetics: list[float]

    def items(self) -> list[SimilarItem]:
        """The items as SimilarItems (aesthetics scores rounded as _ranked rounds them)."""
        return [
            SimilarItem(StoredCard(self.snapshot, p), score, sim, None if a != a else round(a, 1))
            for p, score, sim, a in zip(
                self.positions, self.score, self.similarity, self.aesthetics, strict=True
            )
        ]


@dataclass(frozen=True)
class SimilarResult:
    found: list[SimilarItem] | RankedItems
    model_id: str
    index_version: int
    # The product the items look like (a search by photo has none): read, or its place in
    # the catalog store.
    anchor: Product | StoredCard | None = None

    @cached_property
    def items(self) -> list[SimilarItem]:
        """The similar items, best first."""
        found = self.found
        return found.items() if isinstance(found, RankedItems) else found

    @cached_property
    def product(self) -> Product | None:
        """The product the items look like, as a model object (made on first use)."""
        anchor = self.anchor
        return anchor.card().product() if isinstance(anchor, StoredCard) else anchor


def products_embed(
    product_ids: list[int],
    *,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    extractor: Extractor | None = None,
) -> EmbedReport:
    """Store a vector for each product photo that lacks one for this (default: current) model."""
    extractor = extractor or current_extractor()
    products = list(Product.objects.filter(pk__in=product_ids))
    report = EmbedReport()
    known = set(
        ImageVector.objects.filter(
            model_id=extractor.model_id, image_hash__in={p.image_hash for p in products}
        ).values_list("image_hash", flat=True)
    )
    todo: dict[str, list[Product]] = {}
    for product in products:
        if product.image_hash in known:
            report.reused += 1
        else:
            todo.setdefault(product.image_hash, []).append(product)
    _mark(known, products, EmbeddingStatus.READY)
    if progress and report.reused:
        progress(report.reused)
    for chunk in _chunks(list(todo), batch_size or settings.LOOKALIKE_EMBED_BATCH_SIZE):
        _embed_chunk(extractor, {h: todo[h] for h in chunk}, report, progress)
    return report


def _embed_chunk(extractor, todo: dict[str, list[Product]], report: EmbedReport, progress) -> None:
    images, hashes = [], []
    decoded = decode_photos(
        [partial(read_stored, products[0].image) for products in todo.values()],
        draft_side=catalog_decode_side(extractor),
        workers=settings.LOOKALIKE_DECODE_WORKERS,
    )
    for (image_hash, products), image in zip(todo.items(), decoded, strict=True):
        if isinstance(image, Image.Image):
            images.append(image)
            hashes.append(image_hash)
        else:
            # An unreadable photo will not get better by retrying: record why, move on.
            _fail(products, f"The stored photo could not be read: {image}", report)
    xb = extractor.embed(images)
    finite = np.isfinite(xb).all(axis=1)
    for i in np.flatnonzero(~finite):
        # Even in fp32 (the extractor computes overflowed rows again): the model is broken
        # for this photo, and a non-finite vector would poison every search it takes part in.
        reason = "The photo's vector was not finite (inf or NaN): upload another photo."
        _fail(todo[hashes[i]], reason, report)
    xb, hashes = xb[finite], [h for h, ok in zip(hashes, finite, strict=True) if ok]
    rows = [
        ImageVector(image_hash=h, model_id=extractor.model_id, dim=xb.shape[1], vector=v.tobytes())
        for h, v in zip(hashes, xb, strict=True)
    ]
    with transaction.atomic():
        # ignore_conflicts: a duplicate delivery of the same task writes nothing twice.
        ImageVector.objects.bulk_create(rows, ignore_conflicts=True)
        _mark(set(hashes), [p for h in hashes for p in todo[h]], EmbeddingStatus.READY)
    report.embedded += sum(len(todo[h]) for h in hashes)
    if progress:
        progress(sum(len(products) for products in todo.values()))


def _fail(products: list[Product], reason: str, report: EmbedReport) -> None:
    """Record why these products (sharing one photo) have no vector."""
    for product in products:
        report.failed[product.pk] = reason
    Product.objects.filter(pk__in=[p.pk for p in products]).update(
        embedding_status=EmbeddingStatus.FAILED, embedding_error=reason[:500]
    )


def _mark(hashes: set[str], products: list[Product], status: str) -> None:
    ids = [p.pk for p in products if p.image_hash in hashes]
    if ids:
        Product.objects.filter(pk__in=ids).update(embedding_status=status, embedding_error="")


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_readers: dict[tuple[str, str], vector_index.IndexReader] = {}
_readers_lock = threading.Lock()


def index_rebuild(*, lock: bool = True) -> vector_index.Manifest:
    """Write a new index version holding every active product with a current vector.

    Learned post-processing (whitening, projection head) is refitted on these vectors and
    saved with the version. ``lock=False`` is for callers that already hold the writer lock.
    """
    extractor = current_extractor()
    directory = settings.LOOKALIKE_INDEX_DIR
    directory.mkdir(parents=True, exist_ok=True)
    with vector_index.writer_lock(directory) if lock else contextlib.nullcontext():
        ids, xb = _active_vectors(extractor.model_id, extractor.dim)
        post = postprocessor_fit(extractor, ids, xb)
        index = vector_index.build_index(
            ids,
            post.apply(xb),
            dim=post.output_dim(extractor.dim),
            kind=settings.LOOKALIKE_INDEX_KIND,
            params=index_overrides(),
        )
        manifest = vector_index.save_index(
            index,
            directory,
            model_id=extractor.model_id,
            weights_id=extractor.weights_id,
            postprocessor=None if post.is_identity else post.to_bytes(),
        )
    # Other processes notice the new manifest within the check interval; this one at once.
    for reader in _readers.values():
        reader.invalidate()
    neighbours_schedule(manifest.version)
    logger.info(
        "Index version %s: %s products (%s, %s)",
        manifest.version,
        len(ids),
        manifest.model_id,
        manifest.spec.describe(),
    )
    return manifest


def index_overrides() -> dict[str, int]:
    """Search-time parameters set in the settings (0 = the kind's measured default)."""
    return {
        "ef_search": settings.LOOKALIKE_INDEX_EF_SEARCH,
        "nprobe": settings.LOOKALIKE_INDEX_NPROBE,
    }


def _active_vectors(model_id: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(Product.objects.filter(is_active=True).values_list("pk", "image_hash"))
    vectors = dict(
        ImageVector.objects.filter(
            model_id=model_id, image_hash__in={h for _, h in pairs}
        ).values_list("image_hash", "vector")
    )
    rows = [(pk, vectors[h]) for pk, h in pairs if h in vectors]
    ids = np.array([pk for pk, _ in rows], dtype=np.int64)
    xb = np.frombuffer(b"".join(bytes(v) for _, v in rows), dtype=np.float32).reshape(-1, dim)
    return ids, xb


def _serving_reader() -> vector_index.IndexReader:
    key = str(settings.LOOKALIKE_INDEX_DIR)
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            reader = vector_index.IndexReader(
                settings.LOOKALIKE_INDEX_DIR,
                check_interval=settings.LOOKALIKE_INDEX_CHECK_INTERVAL,
                mmap=settings.LOOKALIKE_INDEX_MMAP,
            )
            _readers[key] = reader
    return reader


def serving_index() -> tuple[object, vector_index.Manifest]:
    """The current index for this process, reloaded when a new version is written.

    The index decides the model: during a model upgrade the previous version keeps serving
    (with its own model for queries) until the new one is complete.
    """
    index, manifest = _serving_reader().current()
    try:
        extractor_for(manifest.model_id)
    except ModelUnavailable as exc:
        raise vector_index.IndexMismatch(str(exc)) from exc
    return index, manifest


_neighbour_readers: dict[str, NeighbourReader] = {}


def serving_neighbours(manifest: vector_index.Manifest) -> NeighbourLists | None:
    """This index version's neighbour lists, None while they are not built (or switched off)."""
    if not settings.LOOKALIKE_NEIGHBOURS:
        return None
    key = str(settings.LOOKALIKE_INDEX_DIR)
    reader = _neighbour_readers.get(key)
    if reader is None:
        with _readers_lock:
            reader = _neighbour_readers.setdefault(
                key,
                NeighbourReader(
                    settings.LOOKALIKE_INDEX_DIR, settings.LOOKALIKE_INDEX_CHECK_INTERVAL
                ),
            )
    return reader.lists(manifest.version, manifest.checksum)


def neighbours_schedule(version: int) -> None:
    """Have a worker build an index version's neighbour lists (at once when tasks run eagerly)."""
    if not settings.LOOKALIKE_NEIGHBOURS:
        return
    from kombu.exceptions import OperationalError

    from recommender.tasks import build_neighbours

    try:
        build_neighbours.delay(version)
    except OperationalError as exc:
        # Searches serve meanwhile; the periodic reconcile schedules the build again.
        logger.warning("Neighbour lists of index version %s not scheduled: %s", version, exc)


def neighbours_build(
    version: int | None = None, progress: Callable[[int], None] | None = None
) -> int | None:
    """Search every product of the current index version once and store the neighbour lists.

    Returns the version whose lists are stored, or None when `version` is no longer the
    current one (a newer version's build takes over). Lists already stored are kept.
    """
    directory = settings.LOOKALIKE_INDEX_DIR
    # Mapped, as web processes map it: a 1M-product graph is not read into the worker too.
    index, manifest = vector_index.load_index(directory, mmap=settings.LOOKALIKE_INDEX_MMAP)
    if version is not None and manifest.version != version:
        return None
    if NeighbourLists.open(directory, manifest.version, manifest.checksum) is not None:
        return manifest.version

    def current() -> bool:
        latest = vector_index.read_manifest(directory)
        return latest is not None and latest.version == manifest.version

    started = time.perf_counter()
    try:
        ids, lists = neighbours_search(index, progress=progress, current=current)
    except Stale:
        logger.info("Neighbour lists of index version %s: superseded", manifest.version)
        return None
    neighbours_save(directory, manifest.version, manifest.checksum, ids, lists)
    neighbours_prune(directory, older_than=manifest.version - 1)
    logger.info(
        "Neighbour lists of index version %s: %s products in %.1f s",
        manifest.version,
        len(ids),
        time.perf_counter() - started,
    )
    return manifest.version


def neighbours_missing() -> int | None:
    """The current index version when its neighbour lists are not stored, else None."""
    if not settings.LOOKALIKE_NEIGHBOURS:
        return None
    directory = settings.LOOKALIKE_INDEX_DIR
    manifest = vector_index.read_manifest(directory)
    if manifest is None or NeighbourLists.open(directory, manifest.version, manifest.checksum):
        return None
    return manifest.version


def serving_version() -> int:
    """The version of the index this process serves now (what cached answers are keyed by)."""
    return _serving_reader().current()[1].version


def product_vector(product: Product, model_id: str | None = None) -> np.ndarray:
    """The stored vector of a product's photo for a model, embedding it now if it has none."""
    extractor = extractor_for(model_id) if model_id else current_extractor()
    row = ImageVector.objects.filter(
        image_hash=product.image_hash, model_id=extractor.model_id
    ).first()
    if row is None:
        products_embed([product.pk], extractor=extractor)
        row = ImageVector.objects.filter(
            image_hash=product.image_hash, model_id=extractor.model_id
        ).first()
    if row is None:
        product.refresh_from_db(fields=["embedding_error"])
        raise ProductNotEmbedded(
            product.embedding_error or f"Product {product.pk} has no usable photo to compare."
        )
    return row.as_array()


def similar_to_product(
    product_id: int,
    k: int,
    *,
    filters: SimilarFilters = NO_FILTERS,
    aesthetics_weight: float | None = None,
    product: Product | None = None,
    catalog: Catalog = WHOLE_CATALOG,
    catalog_version: int | None = None,
) -> SimilarResult:
    """Products that look like this one; raises Product.DoesNotExist for unknown ids.

    `catalog` is where the product is looked up; the result carries the product as read from
    it. A product the index holds is searched with the vector read back from the index (no
    vector query, no post-processing). With the catalog store on (LOOKALIKE_CATALOG_STORE) the
    product and its candidates are read from this process's store, synced for
    `catalog_version` (the version the caller has just read; read here when None): no query
    at all. Without it, the product's row comes with its candidates' rows: one query. A
    product not indexed yet is searched with its stored vector, its photo embedded now if it
    has none. A caller that has just read the (active) product may pass it.
    """
    index, manifest = serving_index()
    snapshot = catalog_snapshot(catalog_version, manifest.version)
    if snapshot is not None:
        position = snapshot.position(product_id, catalog.merchant_id)
        if position < 0:
            raise Product.DoesNotExist(f"No product {product_id} in this catalog.")
    lists = serving_neighbours(manifest)
    r = lists.row_number(product_id) if lists is not None else -1
    if snapshot is not None and r >= 0:
        items = _answered(lists, r, snapshot, position, index.ntotal, k, filters, aesthetics_weight)
        if items is not None:
            anchor = StoredCard(snapshot, position)
            return SimilarResult(items, manifest.model_id, manifest.version, anchor)
    row = lists.lists[r] if r >= 0 else None
    if row is not None:
        # Its lists are its index version's, so the index holds it: its vector is read only
        # if the row falls short.
        xq = partial(index.reconstruct, product_id)
    elif (xq := _indexed_vector(index, product_id)) is None:
        if snapshot is not None:
            product = snapshot.card(position).product()
        elif product is None or product.pk != product_id:
            product = Product.objects.select_related("category").get(catalog.q(), pk=product_id)
        raw = product_vector(product, manifest.model_id)
        xq = serving_postprocessor(manifest).apply(raw)
    result = _similar(
        (index, manifest),
        xq,
        k,
        filters=filters,
        exclude={product_id},
        weight=aesthetics_weight,
        anchor=product if product is not None and product.pk == product_id else product_id,
        catalog=catalog,
        snapshot=snapshot,
        row=row,
    )
    if snapshot is None:
        return result
    return SimilarResult(
        result.found, result.model_id, result.index_version, StoredCard(snapshot, position)
    )


_answer_keeper = AnswerKeeper()


@lru_cache(maxsize=1)
def _ahead() -> tuple[Defaults | None, int, bool]:
    """(The parameters similar items are ranked ahead for, None when they are not; the
    blend's candidates; whether the ranking runs in a thread), from the settings: read once,
    not on every call (each settings read costs a third of a microsecond)."""
    weight = settings.LOOKALIKE_AESTHETICS_WEIGHT
    candidates, k = settings.LOOKALIKE_AESTHETICS_CANDIDATES, settings.LOOKALIKE_SIMILAR_K
    on = (
        settings.LOOKALIKE_DEFAULT_ANSWERS != "off"
        and settings.LOOKALIKE_CATALOG_STORE
        and settings.LOOKALIKE_NEIGHBOURS
    )
    defaults = Defaults(k=k, wanted=_wanted(k, weight, candidates), weight=weight, in_stock=True)
    background = settings.LOOKALIKE_DEFAULT_ANSWERS == "background"
    return (defaults if on else None), candidates, background


@receiver(setting_changed)
def _forget_ahead(**kwargs) -> None:
    _ahead.cache_clear()


def answer_defaults() -> Defaults | None:
    """The parameters similar items are ranked ahead for (recommender.answers); None when
    they are not ranked ahead (LOOKALIKE_DEFAULT_ANSWERS, the catalog store or the neighbour
    lists off)."""
    return _ahead()[0]


def ranked_ahead(k: int, filters: SimilarFilters, weight: float | None) -> bool:
    """Whether a call by product with these parameters is answered from similar items ranked
    ahead (recommender.answers), as long as its product's row is: the defaults but for a
    smaller k, within a merchant's catalog."""
    d, candidates, _ = _ahead()
    if d is None:
        return False
    weight = d.weight if weight is None else weight
    return (
        weight == d.weight
        and k <= d.k
        and _wanted(k, weight, candidates) == d.wanted
        and filters.in_stock == d.in_stock
        and not filters.category
        and filters.min_price is None
        and filters.max_price is None
        and filters.merchant_id is not None
    )


def _answered(
    lists: NeighbourLists,
    r: int,
    snapshot: CatalogSnapshot,
    position: int,
    ntotal: int,
    k: int,
    filters: SimilarFilters,
    weight: float | None,
) -> RankedItems | None:
    """The items ranked ahead for a call by the product of row r (at this position), or None
    when its parameters are not the defaults or its row is not answered there."""
    # Ranked with the product's own merchant as the filter: a key's catalog.
    if not ranked_ahead(k, filters, weight) or filters.merchant_id != snapshot.merchant[position]:
        return None
    defaults, _, background = _ahead()
    answers = _answer_keeper.get(lists, snapshot, ntotal, defaults, background)
    found = answers.row(r, k) if answers is not None else None
    if found is None:
        return None
    ids, final, similarity, aesthetics = found
    return RankedItems(snapshot, snapshot.positions(ids).tolist(), final, similarity, aesthetics)


def default_answers_warm() -> bool:
    """Rank the current index version's similar items ahead now (as a web worker starts);
    whether they are ranked."""
    defaults = answer_defaults()
    if defaults is None:
        return False
    index, manifest = serving_index()
    snapshot = catalog_snapshot(None, manifest.version)
    lists = serving_neighbours(manifest)
    if snapshot is None or lists is None:
        return False
    answers = _answer_keeper.get(lists, snapshot, index.ntotal, defaults, background=False)
    return answers is not None


def _wanted(k: int, weight: float, candidates: int) -> int:
    """How many candidates a call ranks: the blend reorders the top visual ones, so at least
    that many are fetched."""
    return k if weight == 0 else max(k, candidates)


def _indexed_vector(index, product_id: int) -> np.ndarray | None:
    """The index's own (post-processed) vector of a product, or None if it does not hold it."""
    try:
        return index.reconstruct(int(product_id))
    except (RuntimeError, OverflowError):
        return None


def similar_to_image(
    image: Image.Image,
    k: int,
    *,
    filters: SimilarFilters = NO_FILTERS,
    aesthetics_weight: float | None = None,
    box: tuple[float, float, float, float] | None = None,
    catalog_version: int | None = None,
) -> SimilarResult:
    """Products that look like a photo (an upload: nothing is stored), optionally cropped."""
    if box is not None:
        image = crop_box(image, box)
    index, manifest = serving_index()
    extractor = extractor_for(manifest.model_id)
    xq = extractor.embed_query([image])[0]
    config = getattr(extractor, "config", None)
    # Stored vectors are raw; the index holds them through its version's learned maps.
    xq = serving_postprocessor(manifest).apply(xq, config.query_head_weight if config else None)
    return _similar(
        (index, manifest),
        xq,
        k,
        filters=filters,
        exclude=set(),
        weight=aesthetics_weight,
        snapshot=catalog_snapshot(catalog_version, manifest.version),
    )


def ranking_apply(items: list[SimilarItem], weight: float) -> list[SimilarItem]:
    """Candidates reordered by the blend of similarity and their photos' aesthetics scores.

    The scores are the ones the candidates were read with (`SimilarItem.aesthetics`).
    """
    similarity = np.array([item.similarity for item in items])
    aesthetics = np.array([np.nan if i.aesthetics is None else i.aesthetics for i in items])
    return [
        SimilarItem(items[i].source, score=score, similarity=sim, aesthetics=a)
        for i, score, sim, a in _ranked(similarity, aesthetics, weight, len(items))
    ]


def _ranked(similarity: np.ndarray, aesthetics: np.ndarray, weight: float, k: int) -> zip:
    """The best k as (candidate index, final score, similarity, aesthetics score or None),
    best first."""
    order, final = ranking.rerank(similarity, aesthetics, weight)
    best = order[:k]
    # Read as Python floats in one go each: per element, numpy scalars cost a microsecond.
    return zip(
        best.tolist(),
        final[best].tolist(),
        np.asarray(similarity, dtype=np.float64)[best].tolist(),
        [None if a != a else round(a, 1) for a in aesthetics[best].tolist()],  # NaN: no score
        strict=True,
    )


@dataclass(frozen=True)
class _Shown:
    """Candidates still shown, in search order: similarities, their photos' aesthetics scores
    (NaN: none) and how to get the i-th one's card (only the k shown are made)."""

    similarity: np.ndarray
    aesthetics: np.ndarray
    card: Callable[[int], Card | StoredCard]

    def __len__(self) -> int:
        return len(self.similarity)

    def head(self, n: int) -> _Shown:
        return _Shown(self.similarity[:n], self.aesthetics[:n], self.card)


def _similar(
    serving: tuple[object, vector_index.Manifest],
    xq: np.ndarray | Callable[[], np.ndarray],
    k: int,
    *,
    filters: SimilarFilters,
    exclude: set[int],
    weight: float | None,
    anchor: Product | int | None = None,
    catalog: Catalog = WHOLE_CATALOG,
    snapshot: CatalogSnapshot | None = None,
    row: np.ndarray | None = None,
) -> SimilarResult:
    """Search with a post-processed query vector; keep available candidates; rerank.

    `row` is the query product's neighbour list (recommender.neighbours), used instead of
    searching while it holds enough candidates; `xq` may then be a function that reads it.
    Candidates are kept by the catalog store's snapshot when there is one, else by the
    database. An `anchor` given as an id is the product the items look like, read from
    `catalog` in the same query as the first candidates (Product.DoesNotExist if it is not
    there).
    """
    index, manifest = serving
    product = anchor if isinstance(anchor, Product) else None
    if index.ntotal == 0:
        if isinstance(anchor, int):
            product = Product.objects.select_related("category").get(catalog.q(), pk=anchor)
        return SimilarResult([], manifest.model_id, manifest.version, product)
    weight = settings.LOOKALIKE_AESTHETICS_WEIGHT if weight is None else weight
    wanted = _wanted(k, weight, settings.LOOKALIKE_AESTHETICS_CANDIDATES)
    n = min(index.ntotal, wanted + len(exclude) + 8)
    while True:
        if row is not None and n <= len(row):
            # The stored search of this product: a longer one only appends candidates.
            D, I, n = row["sim"][None], row["id"][None], len(row)
        else:
            if callable(xq):
                xq = xq()
            D, I = vector_index.search(index, xq, n)
        if snapshot is not None:
            shown = _shown_in_store(snapshot, D[0], I[0], filters, exclude)
        elif product is None and isinstance(anchor, int):
            shown, product = _keep_available(D[0], I[0], filters, exclude, (anchor, catalog))
        else:
            shown = _keep_available(D[0], I[0], filters, exclude)
        # Filters can drop many candidates; widen the search until enough survive or none remain.
        if len(shown) >= wanted or n >= index.ntotal:
            shown = shown.head(wanted)
            items = [
                SimilarItem(shown.card(i), score=score, similarity=sim, aesthetics=a)
                for i, score, sim, a in _ranked(shown.similarity, shown.aesthetics, weight, k)
            ]
            return SimilarResult(items, manifest.model_id, manifest.version, product)
        n = min(index.ntotal, n * 4)


def _shown_in_store(
    snapshot: CatalogSnapshot,
    scores: np.ndarray,
    ids: np.ndarray,
    filters: SimilarFilters,
    exclude: set[int],
) -> _Shown:
    """Candidates still shown, kept by the catalog store (what _keep_available reads)."""
    indices, positions = snapshot.shown(ids, filters, exclude)
    at = positions.tolist()  # (one conversion, not one per card shown)
    return _Shown(scores[indices], snapshot.score[positions], lambda i: StoredCard(snapshot, at[i]))


# The category of a candidate comes in the same query as its card.
_CATEGORY_FIELDS = ("category__name", "category__slug", "category__position")


def _keep_available(
    scores: np.ndarray,
    ids: np.ndarray,
    filters: SimilarFilters,
    exclude: set[int],
    anchor: tuple[int, Catalog] | None = None,
):
    """Candidates still shown, in search order, with their photos' aesthetics scores.

    With an anchor (product id, catalog) its row is read in the same query and returned too:
    (candidates, product).
    """
    # Stock and activity are read from the database, so a product that sells out or is
    # removed disappears at once, before the index is rebuilt.
    wanted = [int(i) for i in ids if i >= 0 and int(i) not in exclude]
    shown = Q(pk__in=wanted, is_active=True) & filters.q()
    if anchor is not None:
        anchor_id, catalog = anchor
        shown |= Q(pk=anchor_id) & catalog.q()
    products = Product.objects.filter(shown).order_by()
    rows = card_rows(products, live_scorer_version(), *_CATEGORY_FIELDS)
    by_id = {row[0]: row for row in rows}
    kept = [
        (float(s), by_id[int(i)])
        for s, i in zip(scores, ids, strict=True)
        if int(i) in by_id and int(i) not in exclude
    ]
    candidates = _Shown(
        np.array([s for s, _ in kept]),
        np.array([np.nan if row[-1] is None else row[-1] for _, row in kept]),
        lambda i: _card_of(kept[i][1]),
    )
    if anchor is None:
        return candidates
    row = by_id.get(anchor[0])
    if row is None:
        raise Product.DoesNotExist(f"No product {anchor[0]} in this catalog.")
    return candidates, _card_of(row).product()


def _card_of(row: tuple) -> Card:
    n = len(CARD_FIELDS)
    return Card(row[:n], (row[4], *row[n : n + 3]))
