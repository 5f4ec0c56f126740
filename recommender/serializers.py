"""API input validation and output shapes."""

from __future__ import annotations

from rest_framework import serializers

from embeddings.preprocess import parse_box
from recommender.services import SimilarItem
from shop.models import Product


class SimilarQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=100, required=False)
    category = serializers.SlugField(required=False, allow_blank=True)


class ImageSearchSerializer(SimilarQuerySerializer):
    image = serializers.FileField(
        allow_empty_file=True,
        help_text="A JPEG, PNG, WebP or GIF photo of the product to look for.",
    )
    box = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Optional crop 'left,top,right,bottom' as shares (0..1) of the photo.",
    )

    def validate_box(self, value: str):
        if not value.strip():
            return None
        try:
            return parse_box(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


def product_data(product: Product, request) -> dict:
    """The public fields of a product, with absolute URLs."""
    return {
        "id": product.pk,
        "sku": product.sku,
        "title": product.title,
        "price": str(product.price),
        "currency": product.currency,
        "category": product.category.name,
        "category_slug": product.category.slug,
        "in_stock": product.in_stock,
        "image_url": request.build_absolute_uri(product.image_url),
        "thumbnail_url": request.build_absolute_uri(product.thumbnail_url),
        "product_url": request.build_absolute_uri(product.get_absolute_url()),
    }


def similar_item_data(item: SimilarItem, request) -> dict:
    """A product in a similar-items list, with its similarity score (cosine, -1..1)."""
    return {**product_data(item.product, request), "score": round(item.score, 4)}
