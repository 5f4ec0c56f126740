"""Pages and endpoints of the aesthetics ranker: click beacons, merchant photo quality."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from recommender.aesthetics.clicks import BadClick, click_log
from recommender.aesthetics.selectors import photo_quality_attach
from shop.merchant_views import merchant_required
from shop.models import Merchant, Product


# A beacon carries no CSRF token (sendBeacon sets no headers); the list token it must name
# is unguessable and only lets a click be recorded once per item of that list.
@csrf_exempt
@require_POST
def similar_click(request: HttpRequest) -> HttpResponse:
    """Record a shopper's click on an item of a similar-items list (400 on bad input)."""
    token = request.POST.get("list", "")[:32]
    try:
        product_id = int(request.POST.get("product", ""))
        click_log(token, product_id)
    except (ValueError, BadClick) as exc:
        message = str(exc) if isinstance(exc, BadClick) else "product must be a product id."
        return JsonResponse({"code": "bad_click", "message": message}, status=400)
    return HttpResponse(status=204)


@merchant_required
def photo_quality(request: HttpRequest, merchant: Merchant) -> HttpResponse:
    """The merchant's product photos, weakest first, with their scores and reasons."""
    products = Product.objects.filter(merchant=merchant, is_active=True).select_related("category")
    ranked = sorted(
        photo_quality_attach(products),
        key=lambda p: (p.photo_quality is None, p.photo_quality.score if p.photo_quality else 0),
    )
    page = Paginator(ranked, settings.LOOKALIKE_PAGE_SIZE).get_page(request.GET.get("page"))
    flagged = sum(1 for p in ranked if p.photo_quality and p.photo_quality.flagged)
    return render(
        request,
        "merchant/photo_quality.html",
        {
            "merchant": merchant,
            "page": page,
            "flagged": flagged,
            "flag_percentile": settings.LOOKALIKE_AESTHETICS_FLAG_PERCENTILE,
        },
    )
