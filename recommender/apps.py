import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        if not settings.LOOKALIKE_API_KEYS_REQUIRED:
            logger.warning(
                "LOOKALIKE_API_KEYS_REQUIRED is off: the API answers anyone, from every catalog, "
                "with no limits. Use this only to benchmark; never in production."
            )
