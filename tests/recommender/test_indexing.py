"""Keeping the index in step with the catalog: sync, reconcile, reindex, status."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.db import transaction
from torchvision import models

from recommender import index as vector_index
from recommender import index_kinds, indexing
from recommender.embedding import current_extractor, reset_backbone_choice
from recommender.models import ImageVector
from recommender.postprocessing import serving_postprocessor
from recommender.services import (
    index_rebuild,
    products_embed,
    similar_to_image,
    similar_to_product,
)
from shop.images import open_stored
from shop.models import Product
from tests.conftest import queued

pytestmark = pytest.mark.django_db


def held(directory: Path) -> set[int]:
    index, _ = vector_index.load_index(directory)
    return set(indexing.indexed_ids(index).tolist())


def test_sync_removes_hidden_and_deleted_products_and_adds_new_ones(small_catalog, settings):
    # given an index of twelve products
    directory = settings.LOOKALIKE_INDEX_DIR
    hidden, deleted = small_catalog[0], small_catalog[1]
    # when one is hidden, one deleted, and the index synced
    Product.objects.filter(pk=hidden.pk).update(is_active=False)
    Product.objects.filter(pk=deleted.pk).delete()
    report = indexing.index_sync()
    # then both entries are gone, in a new version
    assert report.removed == 2 and report.added == 0
    assert held(directory) == {p.pk for p in small_catalog[2:]}
    assert vector_index.read_manifest(directory).version == report.version == 2
    # when the hidden one comes back
    Product.objects.filter(pk=hidden.pk).update(is_active=True)
    report = indexing.index_sync()
    assert report.added == 1 and hidden.pk in held(directory)


def test_sync_without_changes_writes_no_new_version(small_catalog, settings):
    report = indexing.index_sync()
    assert not report.changed
    assert vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR).version == 1


def test_sync_replaces_the_vector_of_a_product_whose_photo_changed(small_catalog, settings):
    # given product A now has product B's photo (and its stored vector)
    a, b = small_catalog[0], small_catalog[5]
    Product.objects.filter(pk=a.pk).update(image_hash=b.image_hash, image=b.image)
    # when the index is synced for A
    report = indexing.index_sync([a.pk])
    # then A's entry holds B's vector, so B is A's nearest neighbour
    assert report.updated == 1
    index, _ = vector_index.load_index(settings.LOOKALIKE_INDEX_DIR)
    xa, xb = vector_index.reconstruct_vectors(index, np.array([a.pk, b.pk]))
    assert np.allclose(xa, xb)
    assert similar_to_product(b.pk, k=1).items[0].product.pk == a.pk


def broken_index(small_catalog, settings) -> tuple[int, int, int]:
    """An index missing one entry, holding a wrong vector for one, and one deleted product."""
    directory = settings.LOOKALIKE_INDEX_DIR
    index, manifest = vector_index.load_index(directory)
    missing, stale, deleted = small_catalog[0], small_catalog[1], small_catalog[2]
    index.remove_ids(np.array([missing.pk, stale.pk], dtype=np.int64))
    wrong = np.random.default_rng(0).standard_normal((1, manifest.dim)).astype(np.float32)
    wrong /= np.linalg.norm(wrong)
    index.add_with_ids(wrong, np.array([stale.pk], dtype=np.int64))
    with vector_index.writer_lock(directory):
        vector_index.save_index(
            index,
            directory,
            model_id=manifest.model_id,
            weights_id=manifest.weights_id,
            postprocessor=vector_index.read_postprocessor(directory, manifest),
        )
    Product.objects.filter(pk=deleted.pk).delete()
    return missing.pk, stale.pk, deleted.pk


def test_reconcile_repairs_missing_stale_and_deleted_entries(small_catalog, settings):
    # given a deliberately broken index
    missing, stale, deleted = broken_index(small_catalog, settings)
    assert indexing.index_status().drift == 3
    # when reconcile runs
    report = indexing.index_reconcile()
    # then it reports and fixes each problem
    assert (report.missing, report.stale, report.removed) == (1, 1, 1)
    status = indexing.index_status()
    assert status.drift == 0 and status.indexed == 11
    index, manifest = vector_index.load_index(settings.LOOKALIKE_INDEX_DIR)
    stored = ImageVector.objects.get(
        image_hash=Product.objects.get(pk=stale).image_hash, model_id=status.model_id
    ).as_array()
    # The index holds stored vectors through its version's learned post-processing.
    expected = serving_postprocessor(manifest).apply(stored)[0]
    assert np.allclose(vector_index.reconstruct_vectors(index, np.array([stale]))[0], expected)
    assert deleted not in held(settings.LOOKALIKE_INDEX_DIR)


def test_reconcile_embeds_products_that_have_no_vector(small_catalog, settings):
    # given a product whose vector was lost
    product = small_catalog[3]
    ImageVector.objects.filter(image_hash=product.image_hash).delete()
    # when reconcile runs
    report = indexing.index_reconcile()
    # then the photo is embedded again and the product stays in the index
    assert report.embedded == 1
    assert ImageVector.objects.filter(image_hash=product.image_hash).count() == 1
    assert indexing.index_status().drift == 0


def test_the_reconcile_command_reports_what_it_fixed(small_catalog, settings, capsys):
    broken_index(small_catalog, settings)
    call_command("reconcile_index")
    out = capsys.readouterr().out
    assert "1 missing added, 1 stale replaced, 1 removed" in out


def test_index_status_shows_counts_model_version_and_drift(small_catalog, settings, capsys):
    Product.objects.filter(pk=small_catalog[0].pk).update(is_active=False)
    call_command("index_status")
    out = capsys.readouterr().out
    assert "Index version:     1" in out
    assert "Indexed products:  12" in out
    assert "Active products:   11" in out
    assert "Drift:             1 (0 missing from the index, 1 stale entries)" in out


def test_a_crash_while_writing_the_index_leaves_the_previous_version_loadable(
    small_catalog, settings, monkeypatch
):
    # given version 1 and a disk that fails when the new manifest is put in place
    directory = settings.LOOKALIKE_INDEX_DIR
    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if str(dst).endswith(vector_index.MANIFEST_NAME):
            raise OSError("disk gone")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    Product.objects.filter(pk=small_catalog[0].pk).update(is_active=False)
    # when a sync crashes mid-write
    with pytest.raises(OSError, match="disk gone"):
        indexing.index_sync()
    monkeypatch.setattr(os, "replace", real_replace)
    # then version 1 still loads whole, and the next sync succeeds
    index, manifest = vector_index.load_index(directory)
    assert manifest.version == 1 and index.ntotal == 12
    assert indexing.index_sync().removed == 1


def resnet18_file(path: Path) -> Path:
    torch.manual_seed(0)
    torch.save(models.resnet18(weights=None).state_dict(), path)
    return path


def use_backbone(settings, name: str, weights: Path | None = None) -> None:
    settings.LOOKALIKE_BACKBONE = name
    settings.LOOKALIKE_WEIGHTS_FILE = str(weights) if weights else None
    reset_backbone_choice()


def test_reindex_switches_models_while_the_old_index_serves(small_catalog, settings, tmp_path):
    # given an index on efficientnet_lite0, and the configured backbone now resnet18
    directory = settings.LOOKALIKE_INDEX_DIR
    old = vector_index.read_manifest(directory)
    use_backbone(settings, "resnet18", resnet18_file(tmp_path / "r18.pth"))
    new_model = current_extractor().model_id
    # then, before the reindex, the old index still serves with its own model
    query = small_catalog[0]
    assert similar_to_product(query.pk, k=3).model_id == old.model_id
    assert indexing.index_status().upgrade_pending
    # when reindex runs
    call_command("reindex")
    # then the index is one model only, the new one, holding every product
    index, manifest = vector_index.load_index(directory)
    assert manifest.model_id == new_model and index.ntotal == 12
    # resnet18's 512-d vectors, whitened and with the category head (learned on 12 products)
    assert manifest.dim == index.d < 512 and manifest.postprocessor
    result = similar_to_product(query.pk, k=3)
    assert result.model_id == new_model and result.index_version == manifest.version
    assert not indexing.index_status().upgrade_pending


def test_an_index_from_before_the_tilts_were_drawn_small_serves_until_reindexed(
    small_catalog, settings, monkeypatch
):
    # given the products indexed as before 2026-12-03 (tilted views turned at up to 512 px)
    from recommender import embedding

    legacy = dataclasses.replace(embedding.pipeline_config(), tilt_oversample=0)
    with monkeypatch.context() as patch:
        patch.setattr(embedding, "pipeline_config", lambda: legacy)
        reset_backbone_choice()
        products_embed([p.pk for p in small_catalog])
        old = index_rebuild()
    reset_backbone_choice()
    # when this version runs, which draws them at the backbone's size (another model id)
    new_model = current_extractor().model_id
    assert old.model_id.endswith(".rot8") and new_model.endswith(".rot8x1")
    # then the old index still serves similar items and photo searches with its own drawing
    query = small_catalog[0]
    assert similar_to_product(query.pk, k=3).model_id == old.model_id
    found = similar_to_image(open_stored(small_catalog[5].image), k=3)
    assert found.model_id == old.model_id and found.items[0].product.pk == small_catalog[5].pk
    assert indexing.index_status().upgrade_pending
    # and new photos are embedded both ways, the old way as before, so neither index misses them
    extractors = indexing.embedding_models()
    assert [e.model_id for e in extractors] == [new_model, old.model_id]
    stored = ImageVector.objects.get(image_hash=query.image_hash, model_id=old.model_id)
    again = extractors[1].embed([open_stored(query.image)])[0]
    assert float(again @ np.frombuffer(stored.vector, np.float32)) > 0.9999
    # when reindex runs, then the index moves to the new drawing
    call_command("reindex")
    assert vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR).model_id == new_model
    assert similar_to_product(query.pk, k=3).model_id == new_model
    assert not indexing.index_status().upgrade_pending


def test_a_failed_reindex_leaves_the_old_index_serving(
    small_catalog, settings, tmp_path, monkeypatch
):
    directory = settings.LOOKALIKE_INDEX_DIR
    old = vector_index.read_manifest(directory)
    use_backbone(settings, "resnet18", resnet18_file(tmp_path / "r18.pth"))

    def fail(*args, **kwargs):
        raise OSError("GPU fell off the bus")

    monkeypatch.setattr(faiss, "IndexFlatIP", fail)
    with pytest.raises(OSError):
        indexing.index_reindex()
    assert vector_index.read_manifest(directory) == old
    assert similar_to_product(small_catalog[0].pk, k=3).model_id == old.model_id


def test_new_products_are_embedded_for_the_serving_and_the_configured_model(
    small_catalog, settings, tmp_path
):
    # given an upgrade in progress (index on lite0, configured resnet18)
    use_backbone(settings, "resnet18", resnet18_file(tmp_path / "r18.pth"))
    extractors = indexing.embedding_models()
    # then new photos get vectors for both models, so neither index misses them
    assert [e.model_id.split("@", 1)[0] for e in extractors] == ["resnet18", "efficientnet_lite0"]


def test_an_enqueue_inside_a_rolled_back_transaction_runs_no_task(
    small_catalog, monkeypatch, django_capture_on_commit_callbacks
):
    from recommender import tasks
    from shop.services import product_update

    calls = []
    monkeypatch.setattr(tasks.sync_index, "delay", lambda *a: calls.append(a))
    product = small_catalog[0]
    # when the change is rolled back, nothing is queued
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        product_update(product, is_active=False)
        raise RuntimeError("rolled back")
    assert callbacks == [] and calls == []
    assert Product.objects.get(pk=product.pk).is_active
    # while the same change, committed, queues one index update (and tells the catalog stores)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        product_update(Product.objects.get(pk=product.pk), is_active=False)
    assert len(queued(callbacks)) == 1 and calls == [([],)]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_sync_reconcile_and_status_work_for_every_index_kind(
    kind, small_catalog, settings, monkeypatch, capsys
):
    # given the catalog indexed with an approximate kind (IVF allowed to train on 12 vectors)
    monkeypatch.setattr(index_kinds, "IVF_MIN_TRAIN", 4)
    settings.LOOKALIKE_INDEX_KIND = kind
    index_rebuild()
    directory = settings.LOOKALIKE_INDEX_DIR
    assert vector_index.read_manifest(directory).index_kind == kind
    # when one product is hidden, one deleted, and one gets another product's photo
    hidden, deleted, a, b = (small_catalog[i] for i in (0, 1, 2, 5))
    Product.objects.filter(pk=hidden.pk).update(is_active=False)
    Product.objects.filter(pk=deleted.pk).delete()
    Product.objects.filter(pk=a.pk).update(image_hash=b.image_hash, image=b.image)
    report = indexing.index_sync([a.pk])
    # then the new version, still of that kind, holds exactly the active products
    assert (report.removed, report.updated, report.kind_changed) == (2, 1, False)
    assert vector_index.read_manifest(directory).index_kind == kind
    assert held(directory) == {p.pk for p in small_catalog[2:]}
    index, _ = vector_index.load_index(directory)
    xa, xb = vector_index.reconstruct_vectors(index, np.array([a.pk, b.pk]))
    assert np.allclose(xa, xb)
    assert similar_to_product(b.pk, k=1).items[0].product.pk == a.pk
    # and reconcile finds nothing to repair; the status names the kind
    assert indexing.index_reconcile().stale == 0
    assert indexing.index_status().drift == 0
    call_command("index_status")
    assert f"Index kind:        {kind} (" in capsys.readouterr().out


def test_a_sync_rebuilds_the_index_as_the_configured_kind(small_catalog, settings):
    # given a flat index (the fixture's) and a setting that now asks for HNSW
    settings.LOOKALIKE_INDEX_KIND = "hnsw"
    # when the index is synced, with no catalog change
    report = indexing.index_sync()
    # then a new version of the other kind holds the same products
    manifest = vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR)
    assert report.kind_changed and manifest.index_kind == "hnsw"
    assert manifest.index_params["ef_search"] == index_kinds.hnsw_ef(len(small_catalog))
    assert held(settings.LOOKALIKE_INDEX_DIR) == {p.pk for p in small_catalog}
