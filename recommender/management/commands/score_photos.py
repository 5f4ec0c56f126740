"""Score every active product's photo with the live aesthetics scorer (missing ones only)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from recommender.aesthetics.services import live_scorer, photos_score
from shop.models import Product


class Command(BaseCommand):
    help = "Give every active product photo its aesthetics score from the live scorer."

    def handle(self, *args, **options) -> None:
        ids = list(Product.objects.filter(is_active=True).values_list("pk", flat=True))
        version = live_scorer().version
        with tqdm(total=len(ids), desc="Scoring photos", unit="photo") as bar:
            report = photos_score(ids, progress=bar.update)
        self.stdout.write(
            f"Scored {report['scored']}, reused {report['reused']}, failed {report['failed']} "
            f"with {version}."
        )
