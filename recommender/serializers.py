"""Partner API input validation and output shapes (the OpenAPI document is built from these)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from decimal import Decimal
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import iri_to_uri
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from embeddings.preprocess import parse_box
from recommender import catalog_store
from recommender.catalog_store import Card, CatalogSnapshot, PositionCache, StoredCard
from recommender.services import RankedItems, SimilarItem, SimilarResult
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
    return _origin(request) + location


def _origin(request) -> str:
    """request.build_absolute_uri("/") without its slash, worked out once per request.

    That is the scheme and the host (get_host() gives only characters a URI keeps as they are,
    so build_absolute_uri's own parsing and quoting change nothing).
    """
    origin = getattr(request, "_lookalike_origin", None)
    if origin is None:
        origin = request._lookalike_origin = f"{request.scheme}://{request.get_host()}"
    return origin


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
# Where a card's JSON, kept from one response to the next, takes the response's origin
# (scheme://host): a NUL, which the JSON of any string escapes, so it is nowhere else in a body.
ORIGIN = "\x00"


def similar_results_json(
    result: SimilarResult, request, product: Product | StoredCard | None = None
) -> bytes:
    """What the API's JSON renderer makes of similar_results_data(...), byte for byte, written
    directly: the dicts and the encoder's walk over them were a fifth of a similar-items call.

    Cards from the catalog store are written once per snapshot and kept with it (the origin
    aside: it is put in for each response)."""
    links = _Links(request)
    if isinstance(result.found, RankedItems):
        items, count = _ranked_json(result.found, links), len(result.found.positions)
    else:
        items, count = _items_json(result.items, links), len(result.items)
    body = (
        f'{{"model":{_string(result.model_id)},"index_version":{int(result.index_version)},'
        f'"count":{count},"results":[{items}]'
    )
    if product is not None:
        source = product if isinstance(product, StoredCard) else Card.of(product)
        body += f',"product":{_source_json(source, links)}}}'
    body = (body + "}").replace(ORIGIN, _string(links.origin)[1:-1])
    if "\u2028" in body or "\u2029" in body:
        # As JSONRenderer: these two are valid JSON but end a line in JavaScript.
        body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return body.encode()


def _items_json(items: list[SimilarItem], links: _Links) -> str:
    shown = _finite(items)
    scores = _decimals([item.score for item in shown])
    similarities = _decimals([item.similarity for item in shown])
    known = [item.aesthetics for item in shown if item.aesthetics is not None]
    aesthetics = iter(_decimals(known))
    return ",".join(
        f'{_source_json(item.source, links)},"score":{score},"similarity":{similarity},'
        f'"aesthetics":{"null" if item.aesthetics is None else next(aesthetics)}}}'
        for item, score, similarity in zip(shown, scores, similarities, strict=True)
    )


def _ranked_json(ranked: RankedItems, links: _Links) -> str:
    """_items_json of ranked.items(), written from the columns (no item made). Their scores
    are finite: rows with others are not ranked ahead."""
    snapshot = ranked.snapshot
    cache = links.cache(snapshot)
    if cache is not None:
        cards = [cache.values[p] for p in ranked.positions]
    else:
        cards = [None] * len(ranked.positions)
    if None in cards:  # (not written yet: written now, and kept when there is room)
        cards = [
            card or _source_json(StoredCard(snapshot, p), links)
            for card, p in zip(cards, ranked.positions, strict=True)
        ]
    # (As SimilarItem rounds them, then _items_json writes them.)
    known = iter(_decimals([round(a, 1) for a in ranked.aesthetics if a == a]))
    aesthetics = ["null" if a != a else next(known) for a in ranked.aesthetics]
    return ",".join(
        f'{card},"score":{score},"similarity":{similarity},"aesthetics":{a}}}'
        for card, score, similarity, a in zip(
            cards,
            _decimals(ranked.score),
            _decimals(ranked.similarity),
            aesthetics,
            strict=True,
        )
    )


def _decimals(values: list[float]) -> list[str]:
    """repr(round(v, 4)) of each value, in 40 % of the time (12 values: 5 us against 12).

    The same digits: both round the value's exact binary expansion to 4 places, half to even;
    round() then reads them back into the nearest float, and repr() writes the shortest string
    that reads back into that float, which is those digits without their trailing zeros,
    while a float's spacing is finer than 1e-4 (below about 1e11). Larger values take the
    slow way.
    """
    texts = []
    for value in values:
        if -1e11 < value < 1e11:
            text = f"{value:.4f}".rstrip("0")
            texts.append(text + "0" if text[-1] == "." else text)
        else:
            texts.append(repr(round(value, 4)))
    return texts


def _finite(items: list[SimilarItem]) -> list[SimilarItem]:
    """The items, or the error the JSON encoder raises for a score that is NaN or infinite."""
    for item in items:
        if not math.isfinite(item.score + item.similarity + (item.aesthetics or 0.0)):
            raise ValueError(f"Out of range float values are not JSON compliant: {item!r}")
    return items


class _Links:
    """The absolute URLs card_data gives, for one response: its origin and the link shape."""

    def __init__(self, request) -> None:
        self.request = request
        self.origin = _origin(request)
        self.shape = link_shape()
        self._snapshot: CatalogSnapshot | None = None
        self._cache: PositionCache | None = None

    def cache(self, snapshot: CatalogSnapshot) -> PositionCache | None:
        """The snapshot's cache of cards' JSON (looked up once per response and snapshot)."""
        if snapshot is not self._snapshot:
            limit = settings.LOOKALIKE_API_CARD_CACHE_SIZE
            self._snapshot, self._cache = snapshot, snapshot.cache(self.shape.key, limit)
        return self._cache


class LinkShape(NamedTuple):
    """What a card's URLs are made of besides the response's origin (the same for every
    response of a process, unless its script prefix, URL conf or storage changes)."""

    product: tuple[str, str]  # a product page's path around its id, as JSON string content
    media: str | None  # stored_url's prefix when it is a path (plain names follow it), or None
    key: tuple  # everything a card's JSON depends on besides the card and the origin

    def photo_json(self, name: str) -> str | None:
        """The JSON of _absolute(request, stored_url(name)) with ORIGIN for the origin; None
        when it depends on more of the request than its origin."""
        if self.media is not None and plain_name(name):
            return f'"{ORIGIN}{_string(self.media + name)[1:]}'
        location = stored_url(name)
        if location.startswith("/") and not location.startswith("//"):
            return f'"{ORIGIN}{_string(location)[1:]}'  # _absolute's plain case
        parts = urlsplit(location)
        if parts.scheme and parts.netloc:
            return _string(iri_to_uri(location))  # build_absolute_uri keeps an absolute URL
        return None


_link_shapes: dict[tuple, LinkShape] = {}


def link_shape() -> LinkShape:
    """This process's LinkShape now (made once per script prefix, URL conf and storage)."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    base, storage = stored_url_prefix(), default_storage._wrapped
    key = ("card-json", get_script_prefix(), urlconf, base, storage)
    shape = _link_shapes.get(key)
    if shape is None:
        before, after = _product_path(_ANY_ID).split(str(_ANY_ID))
        plain = base is not None and base.startswith("/") and not base.startswith("//")
        shape = LinkShape(
            (_string(before)[1:-1], _string(after)[1:-1]), base if plain else None, key
        )
        if len(_link_shapes) >= 16:  # settings changed by tests, mostly
            _link_shapes.clear()
        _link_shapes[key] = shape
    return shape


def _source_json(source: Card | StoredCard, links: _Links) -> str:
    """The JSON of an item's card (ORIGIN for the origin); a stored card's from its snapshot's
    cache, written there when it is not."""
    if not isinstance(source, StoredCard):
        return _card_json(source, links.shape) or _card_json_of(source, links.request)
    cache = links.cache(source.snapshot)
    text = cache.values[source.position] if cache is not None else None
    if text is None:
        card = source.card()
        text = _card_json(card, links.shape)
        if text is None:
            return _card_json_of(card, links.request)
        if cache is not None:
            cache.put(source.position, text)
    return text


def _card_json(card: Card, shape: LinkShape) -> str | None:
    """card_data(card, request) as JSON, without its closing brace, with ORIGIN where the
    request's origin goes; None when a URL depends on more of the request than its origin."""
    (pk, _, sku, title, _, price, currency, stock, _, image, thumbnail, *_) = card.values
    image_url, thumbnail_url = shape.photo_json(image), shape.photo_json(thumbnail)
    if image_url is None or thumbnail_url is None:
        return None
    return (
        f'{{"id":{int(pk)},"sku":{_string(sku)},"title":{_string(title)},'
        f'"price":{_string(str(price))},"currency":{_string(currency)},'
        f'"category":{_string(card.category[1])},"category_slug":{_string(card.category[2])},'
        f'"in_stock":{"true" if stock > 0 else "false"},'
        f'"image_url":{image_url},"thumbnail_url":{thumbnail_url},'
        f'"product_url":"{ORIGIN}{shape.product[0]}{int(pk)}{shape.product[1]}"'
    )


def _card_json_of(card: Card, request) -> str:
    """card_data(card, request) as JSON without its closing brace, made for this request."""
    data = card_data(card, request)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))[:-1]


def card_texts_fill(snapshot: CatalogSnapshot) -> int:
    """Write the JSON of every card the snapshot's cache has room for; returns how many.

    Runs on each snapshot the catalog store loads in full: as a web worker starts, then every
    10 minutes (about 6 us a card). Otherwise the calls would write the cards they show
    first: with 100,000 products and every product as likely to be asked for, most cards a
    call showed were unwritten until the worker had shown some 100,000. A sync in between
    carries the JSON over for the rows it leaves unchanged.
    """
    shape = link_shape()
    cache = snapshot.cache(shape.key, settings.LOOKALIKE_API_CARD_CACHE_SIZE)
    if cache is None:
        return 0
    written = 0
    for position in range(min(len(snapshot), cache.limit)):
        if cache.values[position] is None:
            text = _card_json(snapshot.card(position), shape)
            if text is not None:
                cache.put(position, text)
                written += 1
    return written


catalog_store.after_load(card_texts_fill)


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
