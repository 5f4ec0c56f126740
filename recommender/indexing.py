"""Keeping the index in step with the catalog: incremental sync, reconcile, model upgrade.

There is one writer at a time (``index.writer_lock``); each change is a new index version,
written atomically, that serving processes pick up on their next check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import faiss
import numpy as np
from django.conf import settings

from recommender import index as vector_index
from recommender.embedding import current_extractor, extractor_for
from recommender.models import ImageVector
from recommender.postprocessing import serving_postprocessor
from recommender.services import (
    _readers,
    index_overrides,
    index_rebuild,
    neighbours_schedule,
    products_embed,
)
from shop.models import EmbeddingStatus, Product

logger = logging.getLogger(__name__)


@dataclass
class SyncReport:
    added: int = 0
    removed: int = 0
    updated: int = 0
    version: int | None = None
    model_id: str = ""
    kind_changed: bool = False  # rebuilt as another kind (size threshold crossed, setting)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated or self.kind_changed)


@dataclass
class ReconcileReport:
    embedded: int = 0
    failed: int = 0
    missing: int = 0
    stale: int = 0
    removed: int = 0
    version: int | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class IndexStatus:
    """What `index_status` prints: the serving index against the catalog."""

    version: int | None
    model_id: str | None
    configured_model_id: str
    indexed: int
    active_products: int
    with_vector: int
    pending: int
    failed: int
    missing: int
    stale: int
    created_at: str | None
    index_kind: str | None = None
    index_params: dict = field(default_factory=dict)
    configured_kind: str = "auto"

    @property
    def drift(self) -> int:
        return self.missing + self.stale

    @property
    def upgrade_pending(self) -> bool:
        return self.model_id is not None and self.model_id != self.configured_model_id


def indexed_ids(index: faiss.Index) -> np.ndarray:
    """The product ids held by an index of any kind."""
    return vector_index.indexed_ids(index)


def _invalidate_readers() -> None:
    for reader in _readers.values():
        reader.invalidate()


def _wanted(model_id: str, product_ids: set[int] | None = None) -> dict[int, str]:
    """Active products that have a vector for this model: product id -> photo hash."""
    products = Product.objects.filter(is_active=True)
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    pairs = dict(products.values_list("pk", "image_hash"))
    have = set(
        ImageVector.objects.filter(model_id=model_id, image_hash__in=set(pairs.values()))
        .values_list("image_hash", flat=True)
        .iterator()
    )
    return {pk: h for pk, h in pairs.items() if h in have}


def _vectors(
    manifest: vector_index.Manifest, rows: dict[int, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Stored vectors of these products, through the version's learned post-processing."""
    by_hash = dict(
        ImageVector.objects.filter(model_id=manifest.model_id, image_hash__in=set(rows.values()))
        .values_list("image_hash", "vector")
        .iterator()
    )
    ids = np.array(list(rows), dtype=np.int64)
    xb = np.frombuffer(b"".join(bytes(by_hash[rows[pk]]) for pk in rows), dtype=np.float32)
    return ids, serving_postprocessor(manifest).apply(xb.reshape(len(ids), -1))


def index_sync(changed_ids: list[int] | None = None) -> SyncReport:
    """Apply adds, updates and removals to the serving index as one new version.

    ``changed_ids`` are products whose photo may have a new vector (re-added if indexed).
    Products no longer active (or deleted) are removed; active ones with a vector added.
    """
    directory = settings.LOOKALIKE_INDEX_DIR
    with vector_index.writer_lock(directory):
        try:
            index, manifest = vector_index.load_index(directory)
        except vector_index.IndexNotFound:
            index = None
        if index is None:
            manifest = index_rebuild_locked()
            return SyncReport(
                added=manifest.count, version=manifest.version, model_id=manifest.model_id
            )
        report = _apply(index, manifest, set(changed_ids or ()))
    if report.changed:
        _invalidate_readers()
    return report


def _apply(index: faiss.Index, manifest: vector_index.Manifest, changed: set[int]) -> SyncReport:
    held = set(indexed_ids(index).tolist())
    wanted = _wanted(manifest.model_id)
    remove = (held - set(wanted)) | (changed & held)
    add = {pk: h for pk, h in wanted.items() if pk not in held or pk in changed}
    report = SyncReport(
        added=len(set(add) - held),
        removed=len(held - set(wanted)),
        updated=len(set(add) & held),
        version=manifest.version,
        model_id=manifest.model_id,
    )
    if report.changed:
        ids, xb = _vectors(manifest, add) if add else (np.empty(0, np.int64), np.empty(0))
        # An HNSW index that loses entries comes back as a new, rebuilt index.
        index = vector_index.update_index(index, np.array(sorted(remove), np.int64), ids, xb)
    # A catalog that crossed a size threshold (or a changed setting) gets another kind.
    rebuilt = vector_index.restructure_index(
        index, settings.LOOKALIKE_INDEX_KIND, index_overrides()
    )
    if rebuilt is not None:
        report.kind_changed = True
        index = rebuilt
    if not report.changed:
        return report
    saved = vector_index.save_index(
        index,
        settings.LOOKALIKE_INDEX_DIR,
        model_id=manifest.model_id,
        weights_id=manifest.weights_id,
        postprocessor=vector_index.read_postprocessor(settings.LOOKALIKE_INDEX_DIR, manifest),
    )
    report.version = saved.version
    neighbours_schedule(saved.version)
    logger.info(
        "Index version %s: +%s -%s ~%s (%s, %s)",
        saved.version,
        report.added,
        report.removed,
        report.updated,
        saved.model_id,
        saved.spec.describe(),
    )
    return report


def index_rebuild_locked() -> vector_index.Manifest:
    """A full rebuild for the configured model; the caller holds the writer lock."""
    return index_rebuild(lock=False)


def embedding_models() -> list:
    """Extractors new photos are embedded with: the configured model, and the serving one."""
    extractors = [current_extractor()]
    manifest = _manifest_or_none()
    if manifest is not None and manifest.model_id != extractors[0].model_id:
        try:
            extractors.append(extractor_for(manifest.model_id))
        except Exception as exc:  # the serving model is gone; reconcile and reindex report it
            logger.warning("Not embedding for the serving model %s: %s", manifest.model_id, exc)
    return extractors


def _manifest_or_none() -> vector_index.Manifest | None:
    try:
        return vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR)
    except vector_index.IndexCorrupt:
        return None


def _stale_ids(index: faiss.Index, manifest: vector_index.Manifest) -> set[int]:
    """Indexed products whose indexed vector is not their photo's stored vector."""
    held = indexed_ids(index)
    wanted = _wanted(manifest.model_id, set(held.tolist()))
    stale = set()
    chunk = 4096
    for start in range(0, len(held), chunk):
        ids = [int(pk) for pk in held[start : start + chunk] if int(pk) in wanted]
        if not ids:
            continue
        _, expected = _vectors(manifest, {pk: wanted[pk] for pk in ids})
        actual = vector_index.reconstruct_vectors(index, np.array(ids, dtype=np.int64))
        mismatch = np.abs(actual - expected).max(axis=1) > 1e-5
        stale.update(pk for pk, bad in zip(ids, mismatch, strict=True) if bad)
    return stale


def index_reconcile() -> ReconcileReport:
    """Compare the catalog with the index and repair the difference; report what was fixed."""
    report = ReconcileReport()
    manifest = _manifest_or_none()
    model_id = manifest.model_id if manifest else current_extractor().model_id
    report.embedded, report.failed = _embed_missing(model_id)
    directory = settings.LOOKALIKE_INDEX_DIR
    with vector_index.writer_lock(directory):
        try:
            index, manifest = vector_index.load_index(directory)
        except (vector_index.IndexNotFound, vector_index.IndexCorrupt) as exc:
            report.problems.append(f"index rebuilt: {exc}")
            manifest = index_rebuild_locked()
            report.missing = manifest.count
            report.version = manifest.version
            _invalidate_readers()
            return report
        stale = _stale_ids(index, manifest)
        sync = _apply(index, manifest, stale)
    report.missing = sync.added
    report.stale = len(stale)
    report.removed = sync.removed
    report.version = sync.version
    if sync.changed:
        _invalidate_readers()
    return report


def _embed_missing(model_id: str) -> tuple[int, int]:
    """Embed active products whose photo has no vector for the model (failed ones stay)."""
    active = dict(
        Product.objects.filter(is_active=True)
        .exclude(embedding_status=EmbeddingStatus.FAILED)
        .values_list("pk", "image_hash")
    )
    have = set(
        ImageVector.objects.filter(model_id=model_id, image_hash__in=set(active.values()))
        .values_list("image_hash", flat=True)
        .iterator()
    )
    todo = [pk for pk, h in active.items() if h not in have]
    if not todo:
        return 0, 0
    embedded = products_embed(todo, extractor=extractor_for(model_id))
    return embedded.embedded, len(embedded.failed)


def index_reindex(progress: Callable[[int], None] | None = None) -> vector_index.Manifest:
    """Build a complete index for the configured model while the current one serves.

    The switch is the manifest replace at the end; if anything fails before it, the
    previous version keeps serving. Vectors of two models never share an index.
    """
    extractor = current_extractor()
    ids = list(Product.objects.filter(is_active=True).values_list("pk", flat=True))
    products_embed(ids, progress=progress, extractor=extractor)
    # A second pass under the lock picks up products saved while the first one ran.
    with vector_index.writer_lock(settings.LOOKALIKE_INDEX_DIR):
        late = list(
            Product.objects.filter(is_active=True).exclude(pk__in=ids).values_list("pk", flat=True)
        )
        if late:
            products_embed(late, extractor=extractor)
        manifest = index_rebuild_locked()
    _invalidate_readers()
    return manifest


def index_status() -> IndexStatus:
    """Counts, model, version and drift of the serving index against the catalog."""
    configured = current_extractor().model_id
    products = Product.objects.filter(is_active=True)
    counts = {
        "active_products": products.count(),
        "pending": products.filter(embedding_status=EmbeddingStatus.PENDING).count(),
        "failed": products.filter(embedding_status=EmbeddingStatus.FAILED).count(),
    }
    try:
        index, manifest = vector_index.load_index(settings.LOOKALIKE_INDEX_DIR)
    except (vector_index.IndexNotFound, vector_index.IndexCorrupt):
        wanted = _wanted(configured)
        return IndexStatus(
            None,
            None,
            configured,
            0,
            with_vector=len(wanted),
            missing=len(wanted),
            stale=0,
            created_at=None,
            configured_kind=settings.LOOKALIKE_INDEX_KIND,
            **counts,
        )
    held = set(indexed_ids(index).tolist())
    wanted = _wanted(manifest.model_id)
    return IndexStatus(
        version=manifest.version,
        model_id=manifest.model_id,
        configured_model_id=configured,
        indexed=len(held),
        with_vector=len(wanted),
        missing=len(set(wanted) - held),
        stale=len(held - set(wanted)) + len(_stale_ids(index, manifest)),
        created_at=manifest.created_at,
        index_kind=manifest.index_kind,
        index_params=manifest.index_params,
        configured_kind=settings.LOOKALIKE_INDEX_KIND,
        **counts,
    )
