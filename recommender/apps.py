import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from recommender.catalog_store import card_written
        from recommender.models import PhotoScore
        from shop.models import Category, Product

        # Every write of what similar-item lists show reaches the catalog stores of all web
        # processes, the admin's and cascades (a merchant deleted) included; bulk writes, which
        # send no signal, call catalog_changed themselves.
        for model in (Product, Category, PhotoScore):
            post_save.connect(card_written, sender=model, dispatch_uid=f"catalog-{model.__name__}")
            post_delete.connect(
                card_written, sender=model, dispatch_uid=f"catalog-{model.__name__}-deleted"
            )
        if not settings.LOOKALIKE_API_KEYS_REQUIRED:
            logger.warning(
                "LOOKALIKE_API_KEYS_REQUIRED is off: the API answers anyone, from every catalog, "
                "with no limits. Use this only to benchmark; never in production."
            )
