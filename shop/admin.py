from django.contrib import admin

from shop.models import Category, Merchant, Product


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "user", "created_at"]
    raw_id_fields = ["user"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "title", "category", "price", "stock", "is_active", "embedding_status"]
    list_filter = ["category", "is_active", "embedding_status", "merchant"]
    search_fields = ["sku", "title"]
    readonly_fields = ["image", "thumbnail", "image_hash", "embedding_status", "embedding_error"]
