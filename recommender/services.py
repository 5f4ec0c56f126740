"""Embedding products, maintaining the index, and finding similar products."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import FloatField, OuterRef, Q, QuerySet, Subquery, Value
from PIL import Image

from embeddings import Extractor
from embeddings.images import decode_photos
from embeddings.preprocess import crop_box
from recommender import index as vector_index
from recommender import ranking
from recommender.embedding import (
    ModelUnavailable,
    catalog_decode_side,
    current_extractor,
    extractor_for,
)
from recommender.models import ImageVector, PhotoScore
from recommender.postprocessing import postprocessor_fit, serving_postprocessor
from shop.images import read_stored
from shop.models import Category, EmbeddingStatus, Product

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
    """Which products may appear in a similar-items list (applied from the database)."""

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
class SimilarItem:
    """A product in a similar-items list: final score orders the list."""

    product: Product
    score: float
    similarity: float
    aesthetics: float | None = None


@dataclass(frozen=True)
class SimilarResult:
    items: list[SimilarItem]
    model_id: str
    index_version: int
    # The product the items look like (a search by photo has none).
    product: Product | None = None


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
            reason = f"The stored photo could not be read: {image}"
            for product in products:
                report.failed[product.pk] = reason
            Product.objects.filter(pk__in=[p.pk for p in products]).update(
                embedding_status=EmbeddingStatus.FAILED, embedding_error=reason[:500]
            )
    xb = extractor.embed(images)
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
    catalog: Q | None = None,
) -> SimilarResult:
    """Products that look like this one; raises Product.DoesNotExist for unknown ids.

    `catalog` is where the product is looked up (default: active products); the result
    carries the product as read from it. A product the index holds is searched with the
    vector read back from the index (no vector query, no post-processing), and its row comes
    with its candidates' rows: the whole call makes one query. A product not indexed yet is
    searched with its stored vector, its photo embedded now if it has none. A caller that has
    just read the (active) product may pass it.
    """
    catalog = Q(is_active=True) if catalog is None else catalog
    index, manifest = serving_index()
    xq = _indexed_vector(index, product_id)
    if xq is None:
        if product is None or product.pk != product_id:
            product = Product.objects.select_related("category").get(catalog, pk=product_id)
        raw = product_vector(product, manifest.model_id)
        xq = serving_postprocessor(manifest).apply(raw)
    return _similar(
        (index, manifest),
        xq,
        k,
        filters=filters,
        exclude={product_id},
        weight=aesthetics_weight,
        anchor=product if product is not None and product.pk == product_id else product_id,
        catalog=catalog,
    )


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
        (index, manifest), xq, k, filters=filters, exclude=set(), weight=aesthetics_weight
    )


def ranking_apply(items: list[SimilarItem], weight: float) -> list[SimilarItem]:
    """Candidates reordered by the blend of similarity and their photos' aesthetics scores.

    The scores are the ones the candidates were read with (`SimilarItem.aesthetics`).
    """
    return [
        SimilarItem(items[i].product, score=score, similarity=items[i].similarity, aesthetics=a)
        for i, score, a in _ranked(items, weight)
    ]


def _ranked(candidates: list, weight: float) -> list[tuple[int, float, float | None]]:
    """(candidate index, final score, aesthetics score or None), best first."""
    a = np.array([np.nan if c.aesthetics is None else c.aesthetics for c in candidates])
    order, final = ranking.rerank(np.array([c.similarity for c in candidates]), a, weight)
    return [
        (int(i), float(final[i]), None if np.isnan(a[i]) else round(float(a[i]), 1)) for i in order
    ]


def _similar(
    serving: tuple[object, vector_index.Manifest],
    xq: np.ndarray,
    k: int,
    *,
    filters: SimilarFilters,
    exclude: set[int],
    weight: float | None,
    anchor: Product | int | None = None,
    catalog: Q | None = None,
) -> SimilarResult:
    """Search with a post-processed query vector; keep available candidates; rerank.

    An `anchor` given as an id is the product the items look like, read from `catalog` in the
    same query as the first candidates (Product.DoesNotExist if it is not there).
    """
    index, manifest = serving
    product = anchor if isinstance(anchor, Product) else None
    if index.ntotal == 0:
        if isinstance(anchor, int):
            product = Product.objects.select_related("category").get(catalog, pk=anchor)
        return SimilarResult([], manifest.model_id, manifest.version, product)
    weight = settings.LOOKALIKE_AESTHETICS_WEIGHT if weight is None else weight
    # The blend reorders the top visual candidates, so at least that many are fetched.
    wanted = k if weight == 0 else max(k, settings.LOOKALIKE_AESTHETICS_CANDIDATES)
    n = min(index.ntotal, wanted + len(exclude) + 8)
    while True:
        D, I = vector_index.search(index, xq, n)
        if product is None and isinstance(anchor, int):
            candidates, product = _keep_available(D[0], I[0], filters, exclude, (anchor, catalog))
        else:
            candidates = _keep_available(D[0], I[0], filters, exclude)
        # Filters can drop many candidates; widen the search until enough survive or none remain.
        if len(candidates) >= wanted or n >= index.ntotal:
            candidates = candidates[:wanted]
            items = [
                SimilarItem(candidates[i].product, score=score, similarity=sim, aesthetics=a)
                for i, score, a in _ranked(candidates, weight)[:k]
                for sim in [candidates[i].similarity]
            ]
            return SimilarResult(items, manifest.model_id, manifest.version, product)
        n = min(index.ntotal, n * 4)


# A candidate's row is read as plain values; only the k shown become Product objects (their
# other fields load on access, as with QuerySet.only()).
_CARD_FIELDS = (
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
_CATEGORY_FIELDS = ("category__name", "category__slug", "category__position")


class _Candidate:
    """A product that may be shown: its row, similarity and photo's aesthetics score."""

    __slots__ = ("row", "similarity", "aesthetics")

    def __init__(self, row: tuple, similarity: float, aesthetics: float | None) -> None:
        self.row, self.similarity, self.aesthetics = row, similarity, aesthetics

    @property
    def product(self) -> Product:
        return _product_of(self.row)


def _product_of(row: tuple) -> Product:
    n = len(_CARD_FIELDS)
    product = Product.from_db("default", _CARD_FIELDS, row[:n])
    category = Category.from_db(
        "default", ("id", "name", "slug", "position"), (row[4], *row[n : n + 3])
    )
    product.category = category
    return product


def _keep_available(
    scores: np.ndarray,
    ids: np.ndarray,
    filters: SimilarFilters,
    exclude: set[int],
    anchor: tuple[int, Q] | None = None,
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
        shown |= Q(pk=anchor_id) & catalog
    rows = Product.objects.filter(shown)
    version = _live_scorer_version()
    score = Value(None, output_field=FloatField())
    if version is not None:
        score = Subquery(
            PhotoScore.objects.filter(
                image_hash=OuterRef("image_hash"), scorer_version=version
            ).values("score")[:1]
        )
    rows = rows.order_by().annotate(aesthetics_score=score)
    by_id = {
        row[0]: row
        for row in rows.values_list(*_CARD_FIELDS, *_CATEGORY_FIELDS, "aesthetics_score")
    }
    candidates = [
        _Candidate(by_id[int(i)], float(s), by_id[int(i)][-1])
        for s, i in zip(scores, ids, strict=True)
        if int(i) in by_id and int(i) not in exclude
    ]
    if anchor is None:
        return candidates
    row = by_id.get(anchor[0])
    if row is None:
        raise Product.DoesNotExist(f"No product {anchor[0]} in this catalog.")
    return candidates, _product_of(row)


def _live_scorer_version() -> str | None:
    """The live aesthetics scorer's version, or None without one (lists go by similarity)."""
    from recommender.aesthetics.scoring import scorer_version
    from recommender.aesthetics.services import live_scorer_path

    path = live_scorer_path()
    try:
        return scorer_version(path)
    except FileNotFoundError:
        logger.warning("No aesthetics scorer at %s", path)
        return None
