"""Merchant pages: a signed-in merchant sees and edits only their own catalog."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from recommender.aesthetics.selectors import photo_quality_attach
from shop.models import Merchant
from shop.selectors import merchant_for_user, merchant_product_list


def merchant_required(view: Callable) -> Callable:
    """Sign-in required, and the account must own a merchant catalog (else a 403 page)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        merchant = merchant_for_user(request.user)
        if merchant is None:
            return render(request, "merchant/not_merchant.html", status=403)
        return view(request, merchant, *args, **kwargs)

    return wrapper


@merchant_required
def dashboard(request: HttpRequest, merchant: Merchant) -> HttpResponse:
    """The merchant's products with their embedding state."""
    query = request.GET.get("q", "").strip()[:100]
    status = request.GET.get("status", "").strip()[:10]
    products = merchant_product_list(merchant, query=query, status=status)
    page = Paginator(products, settings.LOOKALIKE_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = photo_quality_attach(page.object_list)
    return render(
        request,
        "merchant/dashboard.html",
        {"merchant": merchant, "page": page, "query": query, "status": status},
    )
