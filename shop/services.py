"""Catalog writes. Views, forms and commands validate input, then call one of these."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from recommender.catalog_store import catalog_changed
from shop.images import StoredImage, decode_upload, store_image
from shop.models import Category, EmbeddingStatus, Merchant, Product

logger = logging.getLogger(__name__)

DEMO_MERCHANT = ("Lookalike Demo Shoes", "lookalike-demo")
CATEGORY_ORDER = ["sneakers", "boots", "sandals", "heels", "flats", "loafers", "formal", "slippers"]


def merchant_get_or_create(name: str, slug: str) -> Merchant:
    """The merchant with this slug, created if needed."""
    merchant, _ = Merchant.objects.get_or_create(slug=slug, defaults={"name": name})
    return merchant


def merchant_account_ensure(merchant: Merchant, username: str, password: str) -> bool:
    """Give a merchant a sign-in account unless it has one; True when one was created."""
    from django.contrib.auth import get_user_model

    if merchant.user_id is not None:
        return False
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(username=username, password=password)
    merchant.user = user
    merchant.save(update_fields=["user"])
    return True


def category_get_or_create(name: str) -> Category:
    """The category with this name (case-insensitive slug), created if needed."""
    slug = slugify(name)
    position = CATEGORY_ORDER.index(slug) if slug in CATEGORY_ORDER else len(CATEGORY_ORDER)
    category, _ = Category.objects.get_or_create(
        slug=slug, defaults={"name": name.strip().title(), "position": position}
    )
    return category


def _enqueue_embedding(product_ids: list[int]) -> None:
    from recommender.tasks import embed_products

    # After commit, so the worker never looks for a row that is not there yet.
    transaction.on_commit(lambda: embed_products.delay(product_ids))


@dataclass(frozen=True)
class ProductInput:
    """A product's fields as a catalog gives them (the merchant and sku identify it)."""

    sku: str
    title: str
    category: Category
    price: Decimal
    stock: int
    image: StoredImage
    description: str = ""
    currency: str = "EUR"


@transaction.atomic
def product_upsert(
    *,
    merchant: Merchant,
    sku: str,
    title: str,
    category: Category,
    price: Decimal,
    stock: int,
    image: StoredImage,
    description: str = "",
    currency: str = "EUR",
    enqueue: bool = True,
) -> Product:
    """Create the product with this sku, or update it; queue its photo for embedding."""
    item = ProductInput(sku, title, category, price, stock, image, description, currency)
    products, _ = products_upsert(merchant, [item], enqueue=enqueue)
    return products[0]


UPSERT_FIELDS = [
    "title", "description", "category", "price", "currency", "stock", "is_active",
    "image", "thumbnail", "image_width", "image_height",
    "image_hash", "embedding_status", "embedding_error", "updated_at",
]  # fmt: skip


@transaction.atomic
def products_upsert(
    merchant: Merchant, items: list[ProductInput], *, enqueue: bool = True
) -> tuple[list[Product], int]:
    """Create or update products by sku in a few queries; (products, how many are new).

    A sku must appear once per call. Products whose photo changed go back to pending and,
    with ``enqueue``, are queued for embedding as one task.
    """
    existing = {
        p.sku: p for p in Product.objects.filter(merchant=merchant, sku__in=[i.sku for i in items])
    }
    now = timezone.now()
    products, new = [], []
    for item in items:
        product = existing.get(item.sku)
        if product is None:
            product = Product(merchant=merchant, sku=item.sku, created_at=now)
            new.append(product)
        _apply(product, item, now)
        products.append(product)
    Product.objects.bulk_create(new)
    Product.objects.bulk_update([p for p in products if p.sku in existing], UPSERT_FIELDS)
    catalog_changed()  # bulk writes send no signal
    pending = [p.pk for p in products if p.embedding_status == EmbeddingStatus.PENDING]
    if enqueue and pending:
        _enqueue_embedding(pending)
    return products, len(new)


def _apply(product: Product, item: ProductInput, now) -> None:
    product.title = item.title
    product.description = item.description
    product.category = item.category
    product.price = item.price
    product.currency = item.currency
    product.stock = item.stock
    product.is_active = True
    product.image = item.image.path
    product.thumbnail = item.image.thumbnail
    product.image_width = item.image.width
    product.image_height = item.image.height
    # bulk_update does not touch auto_now fields.
    product.updated_at = now
    if product.image_hash != item.image.sha256:
        # A new photo needs a new vector; an unchanged one keeps its state.
        product.image_hash = item.image.sha256
        product.embedding_status = EmbeddingStatus.PENDING
        product.embedding_error = ""


def product_create(
    *, merchant: Merchant, photo: Image.Image, is_active: bool = True, **fields
) -> Product:
    """A new product from a merchant's form; its photo is queued for embedding."""
    product = product_upsert(merchant=merchant, image=store_image(photo), **fields)
    if not is_active:
        product_update(product, is_active=False)
    return product


def _enqueue_index_sync() -> None:
    from recommender.tasks import sync_index

    transaction.on_commit(lambda: sync_index.delay([]))


@transaction.atomic
def product_update(product: Product, *, photo: Image.Image | None = None, **fields) -> Product:
    """Change a product; a new photo is stored and queued for embedding.

    Stock and visibility take effect at once: similar-item lists read them from the database,
    or from a catalog store that is told of every change when it commits. Hiding a product also
    queues an index update that drops its entry.
    """
    was_active = product.is_active
    for name, value in fields.items():
        setattr(product, name, value)
    photo_changed = False
    if photo is not None:
        stored = store_image(photo)
        photo_changed = stored.sha256 != product.image_hash
        product.image, product.thumbnail = stored.path, stored.thumbnail
        product.image_width, product.image_height = stored.width, stored.height
        if photo_changed:
            product.image_hash = stored.sha256
            product.embedding_status = EmbeddingStatus.PENDING
            product.embedding_error = ""
    product.save()
    if photo_changed:
        _enqueue_embedding([product.pk])
    elif was_active != product.is_active:
        _enqueue_index_sync()
    return product


@transaction.atomic
def product_delete(product: Product) -> None:
    """Delete a product; it leaves similar-item lists at once and the index soon after."""
    product.delete()
    _enqueue_index_sync()


@dataclass(frozen=True)
class DemoRow:
    sku: str
    title: str
    description: str
    category: str
    price: Decimal
    currency: str
    stock: int
    image: Path


def demo_rows(directory: Path) -> list[DemoRow]:
    """Rows of the shipped demo catalog's manifest."""
    with open(directory / "manifest.csv", newline="", encoding="utf-8") as handle:
        return [
            DemoRow(
                sku=row["sku"],
                title=row["title"],
                description=row.get("description", ""),
                category=row["category"],
                price=Decimal(row["price"]),
                currency=row.get("currency") or "EUR",
                stock=int(row["stock"]),
                image=directory / "images" / row["image"],
            )
            for row in csv.DictReader(handle)
        ]


def demo_catalog_load(directory: Path, progress: Callable[[int], None] | None = None) -> list[int]:
    """Load or refresh the demo catalog; returns product ids (embedding is left to the caller)."""
    merchant = merchant_get_or_create(*DEMO_MERCHANT)
    ids = []
    with transaction.atomic():
        for row in demo_rows(directory):
            stored = store_image(decode_upload(row.image.read_bytes()))
            product = product_upsert(
                merchant=merchant,
                sku=row.sku,
                title=row.title,
                category=category_get_or_create(row.category),
                price=row.price,
                stock=row.stock,
                image=stored,
                description=row.description,
                currency=row.currency,
                enqueue=False,
            )
            ids.append(product.pk)
            if progress:
                progress(1)
    return ids
