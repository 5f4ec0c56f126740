"""One command to a working shop: migrate, load the demo catalog, embed, index, serve."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections
from tqdm import tqdm

from recommender.aesthetics.services import photos_score
from recommender.embedding import backbone_choice, current_pipeline
from recommender.services import index_rebuild, products_embed
from shop.services import (
    DEMO_MERCHANT,
    demo_catalog_load,
    demo_rows,
    merchant_account_ensure,
    merchant_get_or_create,
)

DEMO_DIR = Path(settings.BASE_DIR) / "demo_catalog"
# The demo merchant's sign-in, printed at start; a demo runs on a laptop, not on the internet.
DEMO_LOGIN = ("merchant", "lookalike-demo")


class Command(BaseCommand):
    help = "Set up and serve the demo shoe shop on http://127.0.0.1:8000."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--catalog", type=Path, default=DEMO_DIR)
        parser.add_argument("--no-serve", action="store_true", help="Set up, then exit.")

    def handle(self, *args, addrport: str, catalog: Path, no_serve: bool, **options) -> None:
        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        ids = self._load(catalog)
        self._embed(ids)
        if no_serve:
            self._score(ids)
        else:
            # Scoring costs several times the embedding: the shop serves at once and orders
            # similar items by similarity until each photo's score is stored (a few minutes).
            threading.Thread(target=self._score_in_background, args=(ids,), daemon=True).start()
        manifest = index_rebuild()
        self.stdout.write(
            self.style.SUCCESS(
                f"Index version {manifest.version}: {manifest.count} products, "
                f"model {manifest.model_id}, dimension {manifest.dim}. "
                f"Demo ready in {time.perf_counter() - started:.1f} s."
            )
        )
        merchant_account_ensure(merchant_get_or_create(*DEMO_MERCHANT), *DEMO_LOGIN)
        self.stdout.write(
            f"Merchant dashboard: http://{addrport}/merchant/ "
            f"(user {DEMO_LOGIN[0]!r}, password {DEMO_LOGIN[1]!r})"
        )
        if not no_serve:
            self.stdout.write(f"Serving the shop on http://{addrport}/ (Ctrl+C to stop)")
            call_command("runserver", addrport, use_reloader=False, insecure_serving=True)

    def _load(self, catalog: Path) -> list[int]:
        rows = demo_rows(catalog)
        with tqdm(total=len(rows), desc="Loading catalog", unit="photo") as bar:
            return demo_catalog_load(catalog, progress=bar.update)

    def _score_in_background(self, ids: list[int]) -> None:
        try:
            self._score(ids)
        finally:
            connections.close_all()  # this thread's own database connection

    def _score(self, ids: list[int]) -> None:
        # Similar items are ordered with the aesthetics scores of the photos: score them now.
        started = time.perf_counter()
        with tqdm(total=len(ids), desc="Scoring photos", unit="photo") as bar:
            report = photos_score(ids, progress=bar.update)
        self.stdout.write(
            f"Photo quality: scored {report['scored']}, reused {report['reused']} "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def _embed(self, ids: list[int]) -> None:
        choice = backbone_choice()
        if choice.name != "resnet50":
            self.stdout.write(self.style.WARNING(f"Backbone: {choice.reason}"))
        pipeline = current_pipeline()
        extractor = pipeline.extractors[0]
        self.stdout.write(
            f"Embedding with {pipeline.model_id} on {extractor.device} ({extractor.precision})"
        )
        started = time.perf_counter()
        with tqdm(total=len(ids), desc="Embedding photos", unit="photo") as bar:
            report = products_embed(ids, progress=bar.update)
        seconds = time.perf_counter() - started
        rate = f"{report.embedded / seconds:.1f} img/s" if report.embedded else "all reused"
        self.stdout.write(
            f"Embedded {report.embedded}, reused {report.reused}, failed {len(report.failed)} "
            f"in {seconds:.1f} s ({rate})"
        )
        for product_id, reason in report.failed.items():
            self.stdout.write(self.style.ERROR(f"  product {product_id}: {reason}"))
