"""Template context shared by every shop page."""

from django.conf import settings
from django.http import HttpRequest

from embeddings.images import human_size
from shop.selectors import category_list


def shop(request: HttpRequest) -> dict:
    """Categories for the navigation bar, and the upload limit the pages state."""
    return {
        "nav_categories": category_list(),
        "max_upload": human_size(settings.LOOKALIKE_MAX_UPLOAD_BYTES),
    }
