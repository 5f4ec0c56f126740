"""Embed every active product that lacks a vector, then write a new index version."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from recommender.services import index_rebuild, products_embed
from shop.models import Product


class Command(BaseCommand):
    help = "Embed missing product photos and rebuild the similarity index."

    def handle(self, *args, **options) -> None:
        ids = list(Product.objects.filter(is_active=True).values_list("pk", flat=True))
        with tqdm(total=len(ids), desc="Embedding photos", unit="photo") as bar:
            report = products_embed(ids, progress=bar.update)
        manifest = index_rebuild()
        self.stdout.write(
            f"Embedded {report.embedded}, reused {report.reused}, failed {len(report.failed)}. "
            f"Index version {manifest.version}: {manifest.count} products ({manifest.model_id})."
        )
