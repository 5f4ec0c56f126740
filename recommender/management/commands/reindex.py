"""Model upgrade without downtime: a complete new index version, then an atomic switch."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from recommender import index as vector_index
from recommender.embedding import current_extractor
from recommender.indexing import index_reindex
from shop.models import Product


class Command(BaseCommand):
    help = (
        "Embed every active product with the configured backbone and switch the index to it. "
        "The current index keeps serving until the new one is complete."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--background", action="store_true", help="Queue the reindex task for a worker."
        )

    def handle(self, *args, background: bool, **options) -> None:
        if background:
            from recommender.tasks import reindex

            result = reindex.delay()
            self.stdout.write(f"Queued reindex task {result.id}.")
            return
        extractor = current_extractor()
        self.stdout.write(
            f"Reindexing with {extractor.model_id} on {extractor.device} ({extractor.precision})"
        )
        started = time.perf_counter()
        total = Product.objects.filter(is_active=True).count()
        with tqdm(total=total, desc="Embedding photos", unit="photo") as bar:
            try:
                manifest = index_reindex(progress=bar.update)
            except (vector_index.WriterLockTimeout, OSError) as exc:
                self.stderr.write(f"Reindex failed; the previous index keeps serving: {exc}")
                raise SystemExit(1) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Index version {manifest.version}: {manifest.count} products "
                f"({manifest.model_id}) in {time.perf_counter() - started:.1f} s."
            )
        )
