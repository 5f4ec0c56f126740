"""Click logging from the shop pages, and photo quality on the merchant's pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from recommender.aesthetics.clicks import click_preferences
from recommender.aesthetics.services import photos_score
from recommender.models import PhotoScore, SimilarClick, SimilarImpression
from recommender.services import similar_to_product
from shop.models import Merchant

pytestmark = pytest.mark.django_db


def _shown_list(client, product) -> SimilarImpression:
    response = client.get(reverse("shop:product", args=[product.pk]))
    token = response.context["impression"]
    assert f'data-impression="{token}"'.encode() in response.content
    return SimilarImpression.objects.get(token=token)


def test_a_click_on_a_shown_item_is_logged_with_its_position(client, small_catalog):
    # given a product page whose similar-items list was logged as shown
    impression = _shown_list(client, small_catalog[0])
    third = impression.product_ids[2]
    # when the shopper clicks the third item
    beacon = {"list": impression.token, "product": third}
    response = client.post(reverse("shop:similar-click"), beacon)
    # then
    assert response.status_code == 204
    click = SimilarClick.objects.get()
    assert (click.product_id, click.position) == (third, 2)
    assert impression.query_kind == "product" and impression.query_product_id == small_catalog[0].pk
    first, second = impression.product_ids[:2]
    assert set(click_preferences()) == {(third, first), (third, second)}


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"list": "nope", "product": "1"},
        {"product": "1"},
        {"list": "TOKEN", "product": "abc"},
        {"list": "TOKEN", "product": "999999"},
        {"list": "TOKEN", "product": "1e9"},
        {"list": "TOKEN" * 100, "product": "-1"},
    ],
)
def test_it_rejects_bad_click_beacons_with_400(client, small_catalog, payload):
    impression = _shown_list(client, small_catalog[0])
    payload = {k: v.replace("TOKEN", impression.token) for k, v in payload.items()}
    response = client.post(reverse("shop:similar-click"), payload)
    assert response.status_code == 400
    assert not SimilarClick.objects.exists()


def test_it_accepts_only_post_for_clicks(client):
    assert client.get(reverse("shop:similar-click")).status_code == 405


def test_weight_zero_orders_by_similarity_and_scores_are_exposed(small_catalog):
    # given every photo scored
    photos_score([p.pk for p in small_catalog])
    query = small_catalog[0]
    # when
    plain = similar_to_product(query.pk, k=8, aesthetics_weight=0.0)
    blended = similar_to_product(query.pk, k=8, aesthetics_weight=0.5)
    # then
    similarities = [item.similarity for item in plain.items]
    assert similarities == sorted(similarities, reverse=True)
    assert [item.score for item in plain.items] == similarities
    assert all(item.aesthetics is not None for item in blended.items)
    finals = [item.score for item in blended.items]
    assert finals == sorted(finals, reverse=True)


def test_the_merchant_sees_flagged_photos_with_reasons(client, small_catalog, settings):
    # given a scored catalog where the bottom half is flagged
    settings.LOOKALIKE_AESTHETICS_FLAG_PERCENTILE = 50
    photos_score([p.pk for p in small_catalog])
    merchant = Merchant.objects.get()
    merchant.user = get_user_model().objects.create_user("m", password="pw-m-12345")
    merchant.save()
    client.login(username="m", password="pw-m-12345")
    # when
    response = client.get(reverse("merchant:photo-quality"))
    # then: weakest first, the bottom half flagged, each with a reason
    products = list(response.context["page"])
    scores = [p.photo_quality.score for p in products]
    assert scores == sorted(scores)
    flagged = [p for p in products if p.photo_quality.flagged]
    assert len(flagged) == len(products) // 2
    assert all(p.photo_quality.reasons for p in flagged)
    assert b"Reshoot:" in response.content
    dashboard = client.get(reverse("merchant:dashboard"))
    assert b'data-testid="photo-quality"' in dashboard.content
    assert PhotoScore.objects.count() == len(small_catalog)


def test_clicks_become_training_pairs_over_the_products_photos(client, small_catalog, tmp_path):
    from recommender.aesthetics.clicks import clicks_source
    from recommender.aesthetics.features import PhotoFeatures

    # given two shown lists, each with a click on its third item
    for product in small_catalog[:2]:
        impression = _shown_list(client, product)
        beacon = {"list": impression.token, "product": impression.product_ids[2]}
        assert client.post(reverse("shop:similar-click"), beacon).status_code == 204
    # when the clicks are turned into a training source
    source = clicks_source(PhotoFeatures(), tmp_path, held_fraction=0.0)
    # then every pair says "clicked beats skipped-above", over features of real photos
    pairs = source.train
    assert len(pairs) == 4 and set(pairs[:, 2].tolist()) == {1}
    photos = {p.image_hash for p in small_catalog}
    assert len(source.xg) == len(source.xl) <= len(photos)
    assert source.xg.shape[0] > int(pairs[:, :2].max())
