"""Which decoding shortcuts the settings allow for catalog and search photos, and where the
backbone is compiled."""

from __future__ import annotations

import pytest
from celery.signals import worker_process_init
from django.core.exceptions import ImproperlyConfigured

import config.celery  # noqa: F401  (connects the worker signals)
from config.settings import env_auto_bool
from recommender import embedding
from recommender.embedding import (
    catalog_decode_side,
    compile_backbone,
    current_pipeline,
    query_decode_side,
)


def test_photos_are_decoded_in_full_by_default() -> None:
    assert catalog_decode_side(current_pipeline()) is None
    assert query_decode_side() is None


def test_drafting_keeps_what_the_centre_crop_needs_and_twice_that_for_uploads(settings) -> None:
    # given the default centre crop (resize to 256, cut 224) with drafting switched on
    settings.LOOKALIKE_DRAFT = True
    settings.LOOKALIKE_QUERY_DRAFT = True
    # then
    assert catalog_decode_side(current_pipeline()) == 256
    assert query_decode_side() == 512


@pytest.mark.parametrize(
    ("setting", "bulk", "device", "expected"),
    [
        ("auto", False, "cuda", False),  # a web process on a GPU: searches must not wait
        ("auto", True, "cuda", True),  # a Celery worker on a GPU: bulk embedding pays
        ("auto", True, "cpu", True),  # a worker on a CPU too: it paid on every CPU measured
        (True, False, "cpu", True),  # LOOKALIKE_COMPILE=1 forces it
        (False, True, "cuda", False),  # LOOKALIKE_COMPILE=0 forbids it
    ],
)
def test_the_backbone_is_compiled_where_the_numbers_favour_it(
    settings, monkeypatch, setting, bulk, device, expected
) -> None:
    settings.LOOKALIKE_COMPILE = setting
    settings.LOOKALIKE_DEVICE = device
    monkeypatch.setattr(embedding, "_bulk_process", bulk)
    assert compile_backbone() is expected


def test_a_celery_worker_marks_its_process_as_bulk(monkeypatch) -> None:
    # given a process not marked yet
    monkeypatch.setattr(embedding, "_bulk_process", False)
    # when Celery starts a worker (the signal its pool processes send too)
    worker_process_init.send(sender=None)
    # then
    assert embedding._bulk_process is True


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "auto"), ("auto", "auto"), ("1", True), ("off", False)]
)
def test_lookalike_compile_reads_auto_or_a_boolean(monkeypatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv("LOOKALIKE_COMPILE", raising=False)
    else:
        monkeypatch.setenv("LOOKALIKE_COMPILE", value)
    assert env_auto_bool("LOOKALIKE_COMPILE") == expected


def test_a_misspelt_lookalike_compile_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("LOOKALIKE_COMPILE", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="use 1 or 0"):
        env_auto_bool("LOOKALIKE_COMPILE")
