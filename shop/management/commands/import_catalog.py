"""Import a catalog for a merchant from the command line, with a progress bar and a report."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from shop.imports.services import ImportSource, import_job_run
from shop.models import Category, ImportJob, ImportStatus, Merchant


class Command(BaseCommand):
    help = (
        "Import a catalog: PATH is a CSV (photos from --images, a ZIP or a folder), a ZIP "
        "holding the CSV and photos, or a ZIP or folder of photos alone (with --category "
        "and --price). Rows are updated by sku; each failed row is reported."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--images", type=Path, help="A ZIP or folder of the CSV's photos.")
        parser.add_argument("--category", help="Photos alone: their category (slug or name).")
        parser.add_argument("--price", type=Decimal, help="Photos alone: their price.")
        parser.add_argument("--stock", type=int, default=1, help="Photos alone: their stock.")

    def handle(self, *args, path: Path, merchant: str, images: Path | None, **options) -> None:
        shop = Merchant.objects.filter(slug=merchant).first()
        if shop is None:
            known = ", ".join(Merchant.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No merchant {merchant!r}; known merchants: {known}.")
        source = self._source(path, images)
        job = ImportJob.objects.create(
            merchant=shop,
            file_names=[str(p) for p in (path, images) if p is not None],
            category=self._category(options["category"]),
            default_price=options["price"],
            default_stock=options["stock"],
        )
        started = time.perf_counter()
        with tqdm(desc="Importing rows", unit="row") as bar:
            job = import_job_run(job.pk, source=source, progress=_updater(bar))
        self._report(job, time.perf_counter() - started)

    def _source(self, path: Path, images: Path | None) -> ImportSource:
        for given in (path, images):
            if given is not None and not given.exists():
                raise CommandError(f"{given} does not exist.")
        if path.suffix.lower() == ".csv":
            return ImportSource(csv=path, photos=images)
        if images is not None:
            raise CommandError("--images goes with a CSV; this PATH holds the photos itself.")
        return ImportSource(photos=path)

    def _category(self, name: str | None) -> Category | None:
        if name is None:
            return None
        category = Category.objects.filter(slug=name.lower()).first()
        category = category or Category.objects.filter(name__iexact=name).first()
        if category is None:
            known = ", ".join(Category.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No category {name!r}; known categories: {known}.")
        return category

    def _report(self, job: ImportJob, seconds: float) -> None:
        if job.status == ImportStatus.FAILED:
            raise CommandError(f"Import {job.pk} refused: {job.error}")
        for error in job.errors:
            sku = f" [{error['sku']}]" if error["sku"] else ""
            self.stdout.write(
                self.style.ERROR(f"  row {error['row']}{sku} {error['field']}: {error['message']}")
            )
        saved = job.products_created + job.products_updated
        self.stdout.write(
            self.style.SUCCESS(
                f"Import {job.pk}: {job.rows_total} rows, {job.products_created} created, "
                f"{job.products_updated} updated, {job.rows_failed} failed "
                f"in {seconds:.1f} s ({saved / seconds:.1f} products/s)."
            )
        )


def _updater(bar: tqdm):
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update
