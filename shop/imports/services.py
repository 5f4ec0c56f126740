"""Catalog import jobs: store the upload, run the job, report row by row."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from embeddings.images import ImageRejected
from shop.images import StoredImage, decode_upload, store_image
from shop.imports.archives import (
    FolderPhotos,
    ImageMissing,
    ImportRejected,
    PhotoSource,
    ZipLimits,
    ZipPhotos,
    csv_entries,
    open_zip,
    safe_file_name,
)
from shop.imports.rows import (
    CatalogRow,
    RowError,
    decode_csv,
    photo_records,
    read_records,
    validate_rows,
)
from shop.models import Category, EmbeddingStatus, ImportJob, ImportStatus, Merchant, Product
from shop.services import ProductInput, products_upsert

logger = logging.getLogger(__name__)

CSV_NAME, ZIP_NAME, PHOTOS_DIR = "catalog.csv", "images.zip", "photos"
Progress = Callable[[int, int], None]


def zip_limits() -> ZipLimits:
    """The configured limits for uploaded ZIPs."""
    return ZipLimits(
        max_entries=settings.LOOKALIKE_IMPORT_MAX_ZIP_ENTRIES,
        max_total_bytes=settings.LOOKALIKE_IMPORT_MAX_ZIP_BYTES,
        max_ratio=settings.LOOKALIKE_IMPORT_MAX_ZIP_RATIO,
    )


def job_folder(job_id: int) -> Path:
    """The folder that holds one job's uploaded files, and nothing else."""
    return Path(settings.LOOKALIKE_IMPORT_DIR) / f"job-{job_id}"


@dataclass(frozen=True)
class ImportSource:
    """Where a job's catalog is: a CSV, and photos in a ZIP or a folder (either may be None)."""

    csv: Path | None = None
    photos: Path | None = None


@transaction.atomic
def import_job_create(
    merchant: Merchant,
    *,
    csv_file: File | None = None,
    zip_file: File | None = None,
    photos: Sequence[File] = (),
    category: Category | None = None,
    price: Decimal | None = None,
    stock: int | None = None,
) -> ImportJob:
    """Keep checked uploads in a new job's folder and queue the job."""
    names = [f.name for f in (csv_file, zip_file, *photos) if f is not None]
    job = ImportJob.objects.create(
        merchant=merchant,
        file_names=names,
        category=category,
        default_price=price,
        default_stock=stock,
    )
    folder = job_folder(job.pk)
    (folder / PHOTOS_DIR).mkdir(parents=True, exist_ok=True)
    if csv_file is not None:
        _save(csv_file, folder / CSV_NAME)
    if zip_file is not None:
        _save(zip_file, folder / ZIP_NAME)
    for photo in photos:
        _save(photo, _unused(folder / PHOTOS_DIR / safe_file_name(photo.name)))
    import_job_enqueue(job.pk)
    return job


def import_job_enqueue(job_id: int) -> None:
    """Run the job in a worker once the job's row is committed."""
    from shop.tasks import import_catalog

    transaction.on_commit(lambda: import_catalog.delay(job_id))


def _save(upload: File, path: Path) -> None:
    upload.seek(0)
    with open(path, "wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)


def _unused(path: Path) -> Path:
    # Two photos with the same name from different folders of the merchant's disk.
    number = 1
    candidate = path
    while candidate.exists():
        number += 1
        candidate = path.with_stem(f"{path.stem}-{number}")
    return candidate


def folder_source(job_id: int) -> ImportSource:
    """The source of a job whose files were uploaded into its folder."""
    folder = job_folder(job_id)
    csv = folder / CSV_NAME
    photos = folder / ZIP_NAME
    if not photos.exists():
        photos = folder / PHOTOS_DIR
    return ImportSource(csv=csv if csv.exists() else None, photos=photos)


def import_job_run(
    job_id: int, *, source: ImportSource | None = None, progress: Progress | None = None
) -> ImportJob:
    """Run an import job (once): validate every row, import the good ones, report the rest."""
    job = ImportJob.objects.select_related("merchant", "category").get(pk=job_id)
    if job.status in (ImportStatus.FINISHED, ImportStatus.FAILED):
        return job
    _job_update(job, status=ImportStatus.RUNNING, started_at=timezone.now())
    try:
        with _opened(source or folder_source(job_id), job) as (records, photos, defaults):
            rows, errors = validate_rows(
                records,
                categories=_categories(),
                has_image=_image_check(photos),
                defaults=defaults,
            )
            _job_update(
                job,
                rows_total=len(records),
                rows_valid=len(rows),
                rows_parsed=len(errors),
                rows_failed=len(errors),
                errors=_sorted(errors),
                products_created=0,
                products_updated=0,
                product_ids=[],
            )
            _import_rows(job, rows, photos, errors, progress)
            if job.products_updated:
                _enqueue_index_sync()
    except ImportRejected as exc:
        _job_update(job, status=ImportStatus.FAILED, error=str(exc), finished_at=timezone.now())
    else:
        _job_update(job, status=ImportStatus.FINISHED, finished_at=timezone.now())
    # Other errors leave the files in place for the task's retry.
    if source is None:
        shutil.rmtree(job_folder(job_id), ignore_errors=True)
    logger.info("Import %s: %s", job.pk, job.status)
    return job


@contextmanager
def _opened(source: ImportSource, job: ImportJob) -> Iterator[tuple[list, PhotoSource, dict]]:
    """(records, photos, defaults for empty fields) with the source's ZIP open."""
    if source.csv is None and (source.photos is None or not source.photos.exists()):
        raise ImportRejected("The files of this import are gone. Upload them again.")
    with ExitStack() as stack:
        photos, csv_text = _photos(source, stack)
        if source.csv is not None:
            csv_text = decode_csv(source.csv.read_bytes())
        if csv_text is None:
            yield photo_records(photos.names() if photos else []), photos, _photo_defaults(job)
        else:
            yield read_records(csv_text, settings.LOOKALIKE_IMPORT_MAX_ROWS), photos, {}


def _photos(source: ImportSource, stack: ExitStack) -> tuple[PhotoSource | None, str | None]:
    if source.photos is None or not source.photos.exists():
        return None, None
    if source.photos.is_dir():
        return FolderPhotos(source.photos), None
    archive = stack.enter_context(open_zip(source.photos, zip_limits()))
    inner = csv_entries(archive)
    if len(inner) > 1 or (inner and source.csv is not None):
        names = ", ".join(entry.filename for entry in inner)
        raise ImportRejected(
            f"Found more than one CSV ({names}{', and the CSV file' if source.csv else ''}). "
            "Import one catalog CSV at a time."
        )
    if not inner:
        return ZipPhotos(archive), None
    text = decode_csv(archive.read(inner[0]))
    return ZipPhotos(archive, exclude={inner[0].filename}), text


def _photo_defaults(job: ImportJob) -> dict[str, str]:
    if job.category is None or job.default_price is None:
        raise ImportRejected(
            "Photos without a CSV need a category and a price for the new products. "
            "Choose them on the import page (or --category and --price), or add a CSV."
        )
    stock = 1 if job.default_stock is None else job.default_stock
    return {"category": job.category.slug, "price": str(job.default_price), "stock": str(stock)}


def _categories() -> dict[str, Category]:
    known = {}
    for category in Category.objects.all():
        known[category.slug.lower()] = category
        known[category.name.lower()] = category
    return known


def _image_check(photos: PhotoSource | None) -> Callable[[str], str | None]:
    def check(name: str) -> str | None:
        if photos is None:
            return f"{name!r} cannot be found: no ZIP or photos came with the CSV"
        try:
            photos.index.find(name)
        except ImageMissing as exc:
            return str(exc)
        return None

    return check


def _import_rows(
    job: ImportJob,
    rows: list[CatalogRow[Category]],
    photos: PhotoSource | None,
    errors: list[RowError],
    progress: Progress | None,
) -> None:
    stored: dict[str, StoredImage | ImageRejected] = {}
    batch_size = settings.LOOKALIKE_IMPORT_BATCH_SIZE
    if progress:
        progress(job.rows_parsed, job.rows_total)
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        with transaction.atomic():
            saved = _import_batch(job, batch, photos, stored, errors)
            to_embed = [p.pk for p in saved if p.embedding_status == EmbeddingStatus.PENDING]
            if to_embed:
                _enqueue_embedding(to_embed)
        if progress:
            progress(job.rows_parsed, job.rows_total)


def _import_batch(
    job: ImportJob,
    batch: list[CatalogRow[Category]],
    photos: PhotoSource | None,
    stored: dict[str, StoredImage | ImageRejected],
    errors: list[RowError],
) -> list[Product]:
    items = []
    for row in batch:
        image = _stored_image(row.image, photos, stored)
        if isinstance(image, ImageRejected):
            errors.append(RowError(row.row, "image", f"{row.image!r}: {image}", row.sku))
        else:
            items.append(_product_input(row, image))
    saved, created = products_upsert(job.merchant, items, enqueue=False) if items else ([], 0)
    _job_update(
        job,
        rows_parsed=job.rows_parsed + len(batch),
        rows_failed=len(errors),
        products_created=job.products_created + created,
        products_updated=job.products_updated + len(saved) - created,
        product_ids=job.product_ids + [p.pk for p in saved],
        errors=_sorted(errors),
    )
    return saved


def _stored_image(
    name: str, photos: PhotoSource, stored: dict[str, StoredImage | ImageRejected]
) -> StoredImage | ImageRejected:
    # Rows often share a photo (sizes, colours of one model): decode and store it once.
    if name not in stored:
        try:
            data = photos.read(name, settings.LOOKALIKE_MAX_UPLOAD_BYTES)
            stored[name] = store_image(decode_upload(data))
        except ImageRejected as exc:
            stored[name] = exc
        except (ImageMissing, OSError) as exc:
            stored[name] = ImageRejected(f"The photo could not be read: {exc}.")
    return stored[name]


def _product_input(row: CatalogRow[Category], image: StoredImage) -> ProductInput:
    return ProductInput(
        sku=row.sku,
        title=row.title,
        category=row.category,
        price=row.price,
        stock=row.stock,
        image=image,
        description=row.description,
        currency=row.currency,
    )


def _enqueue_embedding(product_ids: list[int]) -> None:
    from recommender.tasks import embed_products

    # One task per batch of rows, after its commit, rather than one task per product.
    transaction.on_commit(lambda: embed_products.delay(product_ids))


def _enqueue_index_sync() -> None:
    from recommender.tasks import sync_index

    # An updated product with an unchanged photo gets no embedding task, yet it may have been
    # hidden before this import made it active again: the index should list it once more.
    transaction.on_commit(lambda: sync_index.delay([]))


def _sorted(errors: list[RowError]) -> list[dict]:
    return [e.as_dict() for e in sorted(errors, key=lambda e: (e.row, e.field))]


def _job_update(job: ImportJob, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=list(fields))
