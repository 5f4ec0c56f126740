"""Merchant pages: a signed-in merchant sees and edits only their own catalog."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from shop.forms import ProductCreateForm, ProductEditForm
from shop.models import Merchant, Product
from shop.selectors import merchant_for_user, merchant_product_list
from shop.services import product_create, product_delete, product_update


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
    return render(
        request,
        "merchant/dashboard.html",
        {"merchant": merchant, "page": page, "query": query, "status": status},
    )


def _own_product(merchant: Merchant, pk: int) -> Product:
    # Another merchant's product is "not found", never "forbidden": ids leak nothing.
    return get_object_or_404(Product.objects.select_related("category"), pk=pk, merchant=merchant)


@merchant_required
@require_http_methods(["GET", "POST"])
def product_edit(request: HttpRequest, merchant: Merchant, pk: int) -> HttpResponse:
    """Change title, price, stock, category or photo of one of the merchant's products."""
    product = _own_product(merchant, pk)
    if request.method == "GET":
        form = ProductEditForm(initial=_initial(product))
        return render(
            request,
            "merchant/product_edit.html",
            {"merchant": merchant, "product": product, "form": form},
        )
    form = ProductEditForm(request.POST, request.FILES)
    if not form.is_valid():
        context = {"merchant": merchant, "product": product, "form": form}
        return render(request, "merchant/product_edit.html", context, status=400)
    data = dict(form.cleaned_data)
    photo = data.pop("photo")
    product_update(product, photo=photo, **data)
    note = " The new photo is being processed." if photo is not None else ""
    messages.success(request, f"Saved {product.sku}.{note}")
    return redirect("merchant:product-edit", pk=product.pk)


def _initial(product: Product) -> dict:
    fields = ["title", "description", "category", "price", "currency", "stock", "is_active"]
    return {name: getattr(product, name) for name in fields}


@merchant_required
@require_POST
def product_stock(request: HttpRequest, merchant: Merchant, pk: int) -> HttpResponse:
    """Mark a product out of stock (stock 0) or restock it with a given quantity."""
    product = _own_product(merchant, pk)
    try:
        stock = int(request.POST.get("stock", ""))
    except ValueError:
        stock = -1
    if not 0 <= stock <= 10_000_000:
        messages.error(request, "Stock must be a whole number from 0 to 10,000,000.")
        return redirect("merchant:dashboard")
    product_update(product, stock=stock)
    state = "out of stock" if stock == 0 else f"restocked ({stock})"
    messages.success(request, f"{product.sku} is {state}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "merchant:dashboard"
    return redirect(target or "merchant:dashboard")


@merchant_required
@require_http_methods(["GET", "POST"])
def product_delete_view(request: HttpRequest, merchant: Merchant, pk: int) -> HttpResponse:
    """Confirm, then delete one of the merchant's products."""
    product = _own_product(merchant, pk)
    if request.method == "GET":
        return render(
            request, "merchant/product_delete.html", {"merchant": merchant, "product": product}
        )
    sku = product.sku
    product_delete(product)
    messages.success(request, f"Deleted {sku}.")
    return redirect("merchant:dashboard")


@merchant_required
@require_http_methods(["GET", "POST"])
def product_add(request: HttpRequest, merchant: Merchant) -> HttpResponse:
    """Add one product with its photo; it is embedded in the background."""
    if request.method == "GET":
        form = ProductCreateForm(
            merchant=merchant, initial={"currency": "EUR", "stock": 1, "is_active": True}
        )
        return render(request, "merchant/product_add.html", {"merchant": merchant, "form": form})
    form = ProductCreateForm(request.POST, request.FILES, merchant=merchant)
    if not form.is_valid():
        context = {"merchant": merchant, "form": form}
        return render(request, "merchant/product_add.html", context, status=400)
    data = dict(form.cleaned_data)
    product = product_create(merchant=merchant, photo=data.pop("photo"), **data)
    messages.success(request, f"Added {product.sku}; its photo is being processed.")
    return redirect("merchant:product-edit", pk=product.pk)
