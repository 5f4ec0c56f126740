"""Merchant pages for the partner API: create, list and revoke keys; see usage."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from recommender.keys import api_key_create, api_key_revoke, normalise_origins
from recommender.models import ApiKey
from recommender.usage import chart_bars, usage_days, usage_rows
from shop.merchant_views import merchant_required
from shop.models import Merchant

USAGE_DAYS = 30


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the key is for, e.g. 'blog widget' or 'mobile app'."
    )
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://blog.example.com"}),
        help_text="Sites whose pages may call the API with this key from the browser, one a "
        "line. Leave empty for a key used only from servers.",
    )

    def clean_allowed_origins(self) -> str:
        try:
            return normalise_origins(self.cleaned_data["allowed_origins"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@never_cache
@require_http_methods(["GET", "POST"])
@merchant_required
def api_keys(request: HttpRequest, merchant: Merchant) -> HttpResponse:
    """The merchant's keys, and a form for a new one (whose full key is shown once, here)."""
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        new_key = api_key_create(merchant=merchant, **form.cleaned_data)
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(merchant=merchant)
    return render(
        request,
        "merchant/api_keys.html",
        {"merchant": merchant, "form": form, "keys": keys, "new_key": new_key},
        status=201 if new_key else 200,
    )


@require_POST
@merchant_required
def api_key_revoke_view(request: HttpRequest, merchant: Merchant, key_id: int) -> HttpResponse:
    """Revoke one of the merchant's keys (another merchant's is a 404)."""
    api_key = get_object_or_404(ApiKey, pk=key_id, merchant=merchant)
    api_key_revoke(api_key)
    messages.success(request, f"Key {api_key} is revoked; calls with it now get 401.")
    return redirect("merchant:api-keys")


@merchant_required
def api_usage(request: HttpRequest, merchant: Merchant) -> HttpResponse:
    """Calls and errors per day as a chart, and per key and endpoint as a table."""
    days = usage_days(merchant, days=USAGE_DAYS)
    return render(
        request,
        "merchant/api_usage.html",
        {
            "merchant": merchant,
            "chart": chart_bars(days),
            "days": days,
            "total_calls": sum(d.calls for d in days),
            "total_errors": sum(d.errors for d in days),
            "rows": usage_rows(merchant, days=USAGE_DAYS),
        },
    )


@merchant_required
def api_usage_json(request: HttpRequest, merchant: Merchant) -> JsonResponse:
    """The same usage as JSON: totals per day and rows per key, day and endpoint."""
    days = usage_days(merchant, days=USAGE_DAYS)
    return JsonResponse(
        {
            "merchant": merchant.slug,
            "days": [
                {"day": d.day.isoformat(), "calls": d.calls, "errors": d.errors} for d in days
            ],
            "rows": usage_rows(merchant, days=USAGE_DAYS),
        }
    )
