"""A stored photo's URL is the one the storage gives, whatever the name and base URL."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from shop.images import stored_url

NAMES = [
    "products/ab/0123456789abcdef.jpg",
    "products/ab/0123456789abcdef-thumb.jpg",
    "legacy/17 small.jpg",
    "../outside.jpg",
    "products/./x.jpg",
    "/absolute/x.jpg",
    "x..y.jpg",
    ".hidden",
    "a//b.jpg",
    "é.jpg",
    "what?.jpg",
    "hash#.jpg",
    "dir/",
    "",
]


@pytest.mark.parametrize("base", ["/media/", "https://cdn.example.com/media/", "/a/./b/", "/m"])
def test_a_stored_url_is_the_storage_url(settings, base) -> None:
    settings.MEDIA_URL = base
    assert [stored_url(name) for name in NAMES] == [default_storage.url(n) for n in NAMES]
