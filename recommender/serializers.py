"""Partner API input validation and output shapes (the OpenAPI document is built from these)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from decimal import Decimal

from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import get_script_prefix, get_urlconf, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from embeddings.preprocess import parse_box
from recommender.catalog_store import Card, StoredCard
from recommender.services import SimilarItem, SimilarResult
from shop.images import plain_name, stored_url, stored_url_prefix
from shop.models import Product

MAX_PRICE = Decimal("99999999.99")  # Product.price has 10 digits, 2 of them decimals


def without_blanks(data) -> dict:
    """Parameters with an empty value count as not given (as HTML forms send them)."""
    return {name: value for name, value in data.items() if value != ""}


@extend_schema_field(
    {"type": "string", "pattern": r"^[0-9]{1,8}(\.[0-9]{1,2})?$", "example": "49.90"}
)
class PriceField(serializers.DecimalField):
    """A price bound: 0 to 99999999.99, at most two decimals."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            max_digits=10, decimal_places=2, min_value=0, max_value=MAX_PRICE, **kwargs
        )


class PriceRangeSerializer(serializers.Serializer):
    # A min_price above max_price is not an error: nothing is in that range.
    category = serializers.SlugField(
        required=False, help_text="Only products of this category (its slug), e.g. boots."
    )
    min_price = PriceField(required=False, help_text="Only products at this price or more.")
    max_price = PriceField(required=False, help_text="Only products at this price or less.")


class SimilarQuerySerializer(PriceRangeSerializer):
    k = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="How many products (default 12)."
    )
    in_stock = serializers.BooleanField(
        default=True,
        help_text="true (default): only products in stock; false: out-of-stock ones too.",
    )
    aesthetics_weight = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        help_text="Blend of the aesthetics score into the order: 0 = visual similarity only, "
        "1 = aesthetics only; omitted = the site's setting.",
    )


class ProductListQuerySerializer(PriceRangeSerializer):
    in_stock = serializers.BooleanField(
        required=False,
        help_text="true: only in stock; false: only out of stock; omitted: all.",
    )


class ImageQuerySerializer(SimilarQuerySerializer):
    """Parameters of a search by photo, however the photo is sent."""

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


class ImageUploadSerializer(ImageQuerySerializer):
    image = serializers.FileField(
        allow_empty_file=True,
        help_text="A JPEG, PNG, WebP or GIF photo of the product to look for.",
    )


class ImageBase64Serializer(ImageQuerySerializer):
    image_base64 = serializers.CharField(
        trim_whitespace=True,
        help_text="The photo's bytes in base64 (standard alphabet, no data: prefix needed).",
    )

    def validate_image_base64(self, value: str) -> bytes:
        if value.startswith("data:") and "," in value:
            value = value.split(",", 1)[1]  # a data URL from a browser's FileReader
        limit = settings.LOOKALIKE_MAX_UPLOAD_BYTES
        if len(value) > (limit + 2) // 3 * 4 + 4:
            raise serializers.ValidationError(
                f"The photo is over the upload limit of {limit} bytes; send a smaller one."
            )
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(
                "This is not base64; encode the photo's bytes with the standard alphabet."
            ) from None


def product_data(product: Product, request) -> dict:
    """The public fields of a product, with absolute URLs."""
    return card_data(Card.of(product), request)


def card_data(card: Card, request) -> dict:
    """The public fields of a product's card, with absolute URLs."""
    (pk, _, sku, title, _, price, currency, stock, _, image, thumbnail, *_) = card.values
    return {
        "id": pk,
        "sku": sku,
        "title": title,
        "price": str(price),
        "currency": currency,
        "category": card.category[1],
        "category_slug": card.category[2],
        "in_stock": stock > 0,
        "image_url": _absolute(request, stored_url(image)),
        "thumbnail_url": _absolute(request, stored_url(thumbnail)),
        "product_url": _absolute(request, _product_path(pk)),
    }


_product_paths: dict[tuple, tuple[str, str]] = {}
_ANY_ID = 982_451_653


def _product_path(product_id: int) -> str:
    """Product.get_absolute_url() without reverse() (16 us, for each product of a list).

    The path of one id is worked out once per URL configuration and prefix; an id is an int
    in the path (`<int:pk>`), so any other id's path is the same around it.
    """
    key = (get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    around = _product_paths.get(key)
    if around is None:
        before, after = reverse("shop:product", args=[_ANY_ID]).split(str(_ANY_ID))
        around = _product_paths[key] = (before, after)
    return f"{around[0]}{product_id}{around[1]}"


def _absolute(request, location: str) -> str:
    """request.build_absolute_uri(location), with the origin worked out once per request.

    A list of products builds three URLs per product; validating the host for each one was a
    tenth of a similar-items call.
    """
    if not location.startswith("/") or location.startswith("//"):
        return request.build_absolute_uri(location)
    origin = getattr(request, "_lookalike_origin", None)
    if origin is None:
        origin = request.build_absolute_uri("/")[:-1]
        request._lookalike_origin = origin
    return origin + location


def similar_item_data(item: SimilarItem, request) -> dict:
    """A product in a similar-items list with its scores."""
    return {
        **card_data(item.card, request),
        "score": round(item.score, 4),
        "similarity": round(item.similarity, 4),
        "aesthetics": None if item.aesthetics is None else round(item.aesthetics, 4),
    }


def similar_results_data(result: SimilarResult, request, product: Product | None = None) -> dict:
    """What SimilarResultsSerializer (with a product: SimilarToProductSerializer) makes of a
    result, built directly: a serializer copies its fields each time it is made, a tenth of
    a similar-items call."""
    data = {
        "model": result.model_id,
        "index_version": result.index_version,
        "count": len(result.items),
        "results": [similar_item_data(item, request) for item in result.items],
    }
    if product is not None:
        data["product"] = product_data(product, request)
    return data


# The C string encoder json.dumps uses with ensure_ascii=False (as DRF's renderer does).
_string = json.encoder.encode_basestring


def similar_results_json(
    result: SimilarResult, request, product: Product | StoredCard | None = None
) -> bytes:
    """What the API's JSON renderer makes of similar_results_data(...), byte for byte, written
    directly: the dicts and the encoder's walk over them were a fifth of a similar-items call.

    Cards from the catalog store are written once per snapshot and kept with it."""
    links = _Links(request)
    items = ",".join(
        f"{_source_json(item.source, links)},"
        f'"score":{round(item.score, 4)!r},'
        f'"similarity":{round(item.similarity, 4)!r},'
        f'"aesthetics":{"null" if item.aesthetics is None else repr(round(item.aesthetics, 4))}}}'
        for item in _finite(result.items)
    )
    body = (
        f'{{"model":{_string(result.model_id)},"index_version":{int(result.index_version)},'
        f'"count":{len(result.items)},"results":[{items}]'
    )
    if product is not None:
        source = product if isinstance(product, StoredCard) else Card.of(product)
        body += f',"product":{_source_json(source, links)}}}'
    # As JSONRenderer: these two are valid JSON but end a line in JavaScript.
    return (
        (body + "}")
        .encode()
        .replace(b"\xe2\x80\xa8", b"\\u2028")
        .replace(b"\xe2\x80\xa9", b"\\u2029")
    )


def _finite(items: list[SimilarItem]) -> list[SimilarItem]:
    """The items, or the error the JSON encoder raises for a score that is NaN or infinite."""
    for item in items:
        if not math.isfinite(item.score + item.similarity + (item.aesthetics or 0.0)):
            raise ValueError(f"Out of range float values are not JSON compliant: {item!r}")
    return items


class _Links:
    """The absolute URLs card_data gives, with what they share worked out once per response."""

    def __init__(self, request) -> None:
        self.request = request
        self.origin = _absolute(request, "/")[:-1]
        self.product = _product_path(_ANY_ID).split(str(_ANY_ID))
        # stored_url's plain case, when its result is a path (_absolute's plain case).
        base = stored_url_prefix()
        plain = base is not None and base.startswith("/") and not base.startswith("//")
        self.media = self.origin + base if plain else None
        # Everything a card's URLs depend on besides the card (its cached JSON is kept by it).
        self.key = ("card-json", self.origin, *self.product, self.media, default_storage._wrapped)

    def photo(self, name: str) -> str:
        """_absolute(request, stored_url(name))."""
        if self.media is not None and plain_name(name):
            return self.media + name
        return _absolute(self.request, stored_url(name))

    def product_page(self, product_id: int) -> str:
        """_absolute(request, _product_path(product_id))."""
        return f"{self.origin}{self.product[0]}{product_id}{self.product[1]}"


def _source_json(source: Card | StoredCard, links: _Links) -> str:
    """_card_json of an item's card; a stored card's from its snapshot's cache when there."""
    if not isinstance(source, StoredCard):
        return _card_json(source, links)
    cache = source.snapshot.derived.get(links.key)
    if cache is None:
        cache = source.snapshot.derived.setdefault(links.key, {})
    text = cache.get(source.position)
    if text is None:
        text = _card_json(source.card(), links)
        if len(cache) < settings.LOOKALIKE_API_CARD_CACHE_SIZE:
            cache[source.position] = text
    return text


def _card_json(card: Card, links: _Links) -> str:
    """card_data(card, request) as JSON, without its closing brace."""
    (pk, _, sku, title, _, price, currency, stock, _, image, thumbnail, *_) = card.values
    return (
        f'{{"id":{int(pk)},"sku":{_string(sku)},"title":{_string(title)},'
        f'"price":{_string(str(price))},"currency":{_string(currency)},'
        f'"category":{_string(card.category[1])},"category_slug":{_string(card.category[2])},'
        f'"in_stock":{"true" if stock > 0 else "false"},'
        f'"image_url":{_string(links.photo(image))},'
        f'"thumbnail_url":{_string(links.photo(thumbnail))},'
        f'"product_url":{_string(links.product_page(pk))}'
    )


class ProductSerializer(serializers.Serializer):
    """A product of the key's catalog."""

    id = serializers.IntegerField(help_text="Stable id of the product.")
    sku = serializers.CharField(help_text="The merchant's SKU (unique in its catalog).")
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. EUR.")
    category = serializers.CharField()
    category_slug = serializers.SlugField()
    in_stock = serializers.BooleanField()
    image_url = serializers.URLField(help_text="Absolute URL of the photo (JPEG).")
    thumbnail_url = serializers.URLField(help_text="Absolute URL of a 400 px thumbnail.")
    product_url = serializers.URLField(help_text="The product's page in the shop.")

    def to_representation(self, instance: Product) -> dict:
        return product_data(instance, self.context["request"])


class SimilarItemSerializer(ProductSerializer):
    score = serializers.FloatField(help_text="The final ordering score (higher first).")
    similarity = serializers.FloatField(help_text="Visual similarity: cosine, -1..1.")
    aesthetics = serializers.FloatField(
        allow_null=True, help_text="Aesthetics score 0..1, or null where none is computed."
    )

    def to_representation(self, instance: SimilarItem) -> dict:
        return similar_item_data(instance, self.context["request"])


class SimilarResultsSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The embedding model (backbone@weights).")
    index_version = serializers.IntegerField(help_text="Version of the index searched.")
    count = serializers.IntegerField()
    results = SimilarItemSerializer(many=True)


class SimilarToProductSerializer(SimilarResultsSerializer):
    product = ProductSerializer(help_text="The product the results look like.")


class FieldErrorsField(serializers.DictField):
    child = serializers.ListField(child=serializers.CharField())


class ErrorSerializer(serializers.Serializer):
    """Every 4xx and 5xx answer of the API."""

    code = serializers.CharField(help_text="Machine-readable, e.g. invalid_api_key.")
    message = serializers.CharField(help_text="For people: what went wrong and what to do.")
    errors = FieldErrorsField(help_text="Messages per input field (400 only; else {}).")


class LimitSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=["burst", "sustained", "daily"])
    calls = serializers.IntegerField(help_text="Calls allowed per window.")
    window_seconds = serializers.IntegerField()
    retry_after = serializers.IntegerField(help_text="Seconds until a call is allowed again.")


class RateLimitErrorSerializer(ErrorSerializer):
    limit = LimitSerializer(help_text="Which limit was exceeded.")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["ok", "degraded"], help_text="degraded: no usable index (similar items fail)."
    )
    model = serializers.CharField(allow_null=True)
    index_version = serializers.IntegerField(allow_null=True)
    indexed_products = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(help_text="What is wrong when degraded; else empty.")


class UsageQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=90, default=30)


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    endpoint = serializers.CharField(help_text="similar, similar-by-sku, image-search, ...")
    calls = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Calls answered with a 4xx or 5xx.")


class UsageSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The calling key's public prefix.")
    days = serializers.IntegerField()
    calls = serializers.IntegerField(help_text="Total over the period.")
    errors = serializers.IntegerField()
    usage = UsageDaySerializer(many=True, help_text="Per day and endpoint, newest first.")
