from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from recommender.keys import api_key_create, api_key_revoke, normalise_origins
from recommender.models import ApiKey, ApiUsage, ImageVector


@admin.register(ImageVector)
class ImageVectorAdmin(admin.ModelAdmin):
    list_display = ["image_hash", "model_id", "dim", "created_at"]
    list_filter = ["model_id"]
    readonly_fields = ["image_hash", "model_id", "dim", "created_at"]
    exclude = ["vector"]


class ApiKeyAdminForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = [
            "merchant", "name", "allowed_origins", "burst_limit", "sustained_limit",
            "daily_quota", "revoked_at",
        ]  # fmt: skip

    def clean_allowed_origins(self) -> str:
        try:
            return normalise_origins(self.cleaned_data["allowed_origins"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyAdminForm
    list_display = ["name", "merchant", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["merchant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "merchant__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = [
        "merchant", "name", "allowed_origins", "burst_limit", "sustained_limit", "daily_quota",
        "prefix", "created_at", "last_used_at", "revoked_at",
    ]  # fmt: skip
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new key goes through the service, which draws the secret; it is shown once, here.
        new = api_key_create(
            merchant=obj.merchant,
            name=obj.name,
            allowed_origins=obj.allowed_origins,
            burst_limit=obj.burst_limit,
            sustained_limit=obj.sustained_limit,
            daily_quota=obj.daily_quota,
        )
        obj.pk, obj.prefix, obj.created_at = (
            new.api_key.pk,
            new.api_key.prefix,
            new.api_key.created_at,
        )
        obj._state.adding = False
        messages.warning(
            request, f"The new key is {new.full_key} — copy it now; it is not shown again."
        )

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_key_revoke(api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")


@admin.register(ApiUsage)
class ApiUsageAdmin(admin.ModelAdmin):
    list_display = ["day", "api_key", "endpoint", "calls", "errors"]
    list_filter = ["day", "endpoint"]
    readonly_fields = ["api_key", "day", "endpoint", "calls", "errors"]
