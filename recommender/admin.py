from django.contrib import admin

from recommender.models import ImageVector


@admin.register(ImageVector)
class ImageVectorAdmin(admin.ModelAdmin):
    list_display = ["image_hash", "model_id", "dim", "created_at"]
    list_filter = ["model_id"]
    readonly_fields = ["image_hash", "model_id", "dim", "created_at"]
    exclude = ["vector"]
