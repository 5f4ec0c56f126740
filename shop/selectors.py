"""Catalog reads for pages and the API."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from shop.models import Category, EmbeddingStatus, Merchant, Product


def product_list(*, query: str = "", category_slug: str = "") -> QuerySet[Product]:
    """Active products, optionally filtered by a title search and a category."""
    products = Product.objects.filter(is_active=True).select_related("category")
    for word in query.split()[:8]:
        products = products.filter(Q(title__icontains=word) | Q(sku__iexact=word))
    if category_slug:
        products = products.filter(category__slug=category_slug)
    return products.order_by("category__position", "title", "id")


def category_list() -> QuerySet[Category]:
    """Categories that have active products, with their counts."""
    return (
        Category.objects.annotate(
            product_count=Count("products", filter=Q(products__is_active=True))
        )
        .filter(product_count__gt=0)
        .order_by("position", "name")
    )


def product_get(product_id: int) -> Product | None:
    """An active product by id, or None."""
    return Product.objects.filter(pk=product_id, is_active=True).select_related("category").first()


def merchant_for_user(user) -> Merchant | None:
    """The merchant catalog a signed-in account manages, or None."""
    if not user.is_authenticated:
        return None
    return Merchant.objects.filter(user=user).first()


def merchant_product_list(
    merchant: Merchant, *, query: str = "", status: str = ""
) -> QuerySet[Product]:
    """All of one merchant's products (active or not), newest changes first."""
    products = Product.objects.filter(merchant=merchant).select_related("category")
    for word in query.split()[:8]:
        products = products.filter(Q(title__icontains=word) | Q(sku__icontains=word))
    if status in EmbeddingStatus.values:
        products = products.filter(embedding_status=status)
    return products.order_by("-updated_at", "-id")
