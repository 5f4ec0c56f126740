"""Merchant pages: sign-in, and each merchant sees only their own catalog."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from shop.models import Merchant, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_merchants(small_catalog):
    users = get_user_model().objects
    first = Merchant.objects.get()
    first.user = users.create_user("first", password="pw-first-123")
    first.save()
    second = Merchant.objects.create(name="Second", slug="second")
    second.user = users.create_user("second", password="pw-second-123")
    second.save()
    moved = small_catalog[:2]
    Product.objects.filter(pk__in=[p.pk for p in moved]).update(merchant=second)
    return first, second, moved


def test_it_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("merchant:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_refuses_accounts_without_a_catalog(client):
    get_user_model().objects.create_user("shopper", password="pw-shopper-123")
    client.login(username="shopper", password="pw-shopper-123")
    response = client.get(reverse("merchant:dashboard"))
    assert response.status_code == 403
    assert b"not linked to a merchant" in response.content


def test_a_merchant_sees_only_their_own_products(client, two_merchants):
    first, second, moved = two_merchants
    client.login(username="second", password="pw-second-123")
    response = client.get(reverse("merchant:dashboard"))
    skus = [p.sku for p in response.context["page"]]
    assert sorted(skus) == sorted(p.sku for p in moved)
    client.login(username="first", password="pw-first-123")
    response = client.get(reverse("merchant:dashboard"))
    assert response.context["page"].paginator.count == len(Product.objects.filter(merchant=first))
    assert not {p.sku for p in moved} & {p.sku for p in response.context["page"]}
