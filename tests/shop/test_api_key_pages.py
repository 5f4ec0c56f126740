"""Merchant pages for API keys: create (shown once), list, revoke; usage as a chart and JSON."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from recommender.keys import api_key_create
from recommender.models import ApiKey
from recommender.usage import usage_record
from shop.models import Merchant

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant_client(merchant) -> tuple[Client, Merchant]:
    merchant.user = get_user_model().objects.create_user("shoes", password="pw-shoes-123")
    merchant.save()
    client = Client()
    client.login(username="shoes", password="pw-shoes-123")
    return client, merchant


def test_a_merchant_creates_a_key_that_is_shown_once_and_works(merchant_client) -> None:
    client, merchant = merchant_client
    # when
    response = client.post(
        reverse("merchant:api-keys"),
        {"name": "blog widget", "allowed_origins": "https://blog.example/\nhttp://localhost:3000"},
    )
    # then the key is on the page once, never stored, and it works
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    full_key = re.search(r'data-testid="new-key-value">(lk_\w+)<', html)[1]
    row = ApiKey.objects.get(merchant=merchant)
    assert row.origins == ["https://blog.example", "http://localhost:3000"]
    assert full_key not in str(ApiKey.objects.filter(pk=row.pk).values().get())
    api = Client(headers={"X-Api-Key": full_key})
    assert api.get(reverse("api:products")).status_code == 200
    # and the list shows only the prefix afterwards
    listing = client.get(reverse("merchant:api-keys")).content.decode()
    assert f"lk_{row.prefix}_" in listing and full_key not in listing


def test_a_bad_origin_is_refused_with_a_message(merchant_client) -> None:
    client, _ = merchant_client
    response = client.post(
        reverse("merchant:api-keys"), {"name": "x", "allowed_origins": "blog.example/path"}
    )
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_merchant_revokes_their_key_but_not_anothers(merchant_client) -> None:
    client, merchant = merchant_client
    mine = api_key_create(merchant=merchant, name="mine")
    other = Merchant.objects.create(name="Other", slug="other")
    theirs = api_key_create(merchant=other, name="theirs")
    response = client.post(reverse("merchant:api-key-revoke", args=[theirs.api_key.pk]))
    assert response.status_code == 404
    response = client.post(reverse("merchant:api-key-revoke", args=[mine.api_key.pk]))
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=mine.api_key.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=theirs.api_key.pk).revoked_at is None
    # and the list does not show the other merchant's key
    assert "theirs" not in client.get(reverse("merchant:api-keys")).content.decode()


def test_usage_is_a_chart_with_a_bar_per_day_and_json(merchant_client) -> None:
    # given a few calls today, two of them failed
    client, merchant = merchant_client
    key = api_key_create(merchant=merchant, name="blog").api_key
    for failed in (False, False, False, True, True):
        usage_record(key.pk, "similar", failed=failed)
    usage_record(key.pk, "image-search", failed=False)
    # when
    page = client.get(reverse("merchant:api-usage"))
    # then: 30 bars, today's 6 calls the tallest, 2 of them errors
    html = page.content.decode()
    assert 'data-testid="usage-chart"' in html
    bars = page.context["chart"]["bars"]
    assert len(bars) == 30 and (bars[-1].calls, bars[-1].errors) == (6, 2)
    assert bars[-1].ok_height > bars[-1].error_height > 0 and bars[0].ok_height == 0
    assert html.count('class="ok"') == 30
    body = client.get(reverse("merchant:api-usage-json")).json()
    assert body["days"][-1]["calls"] == 6 and body["days"][-1]["errors"] == 2
    assert {(r["endpoint"], r["calls"], r["errors"]) for r in body["rows"]} == {
        ("similar", 5, 2),
        ("image-search", 1, 0),
    }


def test_the_nav_links_the_key_and_usage_pages(merchant_client) -> None:
    client, _ = merchant_client
    html = client.get(reverse("merchant:dashboard")).content.decode()
    assert reverse("merchant:api-keys") in html and reverse("merchant:api-usage") in html


def test_the_pages_need_a_merchant_account(client, db) -> None:
    for name in ("merchant:api-keys", "merchant:api-usage", "merchant:api-usage-json"):
        assert client.get(reverse(name)).status_code == 302


def test_usage_added_up_in_memory_is_written_before_it_is_read(merchant, settings) -> None:
    # given a process that writes usage every minute
    from recommender.models import ApiUsage
    from recommender.usage import usage_days

    settings.LOOKALIKE_API_USAGE_FLUSH_SECONDS = 60
    key = api_key_create(merchant=merchant, name="blog").api_key
    # when
    for failed in (False, True, False):
        usage_record(key.pk, "similar", failed=failed)
    # then nothing is written yet, and reading usage writes it first
    assert not ApiUsage.objects.exists()
    today = usage_days(merchant, days=1)[0]
    assert (today.calls, today.errors) == (3, 1)
    assert ApiUsage.objects.get().calls == 3
