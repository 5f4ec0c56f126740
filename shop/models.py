"""Catalog models: merchants, categories, products and their photos."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Merchant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    # The account that signs in to manage this catalog (none for catalogs run by operators).
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merchant",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class EmbeddingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Product(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="products")
    sku = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    stock = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    # Photos are stored once per content hash; the vector is keyed by the same hash.
    image = models.CharField(max_length=200)
    thumbnail = models.CharField(max_length=200)
    image_hash = models.CharField(max_length=64, db_index=True)
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    embedding_status = models.CharField(
        max_length=10, choices=EmbeddingStatus.choices, default=EmbeddingStatus.PENDING
    )
    embedding_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "sku"], name="unique_sku_per_merchant"),
        ]
        indexes = [
            models.Index(fields=["is_active", "stock"]),
            # Catalog stores read what changed since their last sync (recommender.catalog_store).
            models.Index(fields=["updated_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("shop:product", args=[self.pk])

    def get_similar_url(self) -> str:
        return reverse("shop:similar", args=[self.pk])

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def image_url(self) -> str:
        from shop.images import stored_url

        return stored_url(self.image)

    @property
    def thumbnail_url(self) -> str:
        from shop.images import stored_url

        return stored_url(self.thumbnail)


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One catalog import: its files, progress counts and the report of rows that failed."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    # As the merchant named them; the files themselves live in the job's own folder.
    file_names = models.JSONField(default=list)
    # A batch of photos has no CSV: these fill in what the file names cannot say.
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    default_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    default_stock = models.PositiveIntegerField(null=True, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_parsed = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    products_created = models.PositiveIntegerField(default=0)
    products_updated = models.PositiveIntegerField(default=0)
    # [{"row", "field", "message", "sku"}, ...] for every row that was not imported.
    errors = models.JSONField(default=list)
    product_ids = models.JSONField(default=list)
    # Why the whole import was refused (a hostile ZIP, a CSV that is not UTF-8, ...).
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.merchant}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("merchant:import-job", args=[self.pk])
