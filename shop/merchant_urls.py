from django.urls import path

from shop import api_key_views, merchant_views

app_name = "merchant"

urlpatterns = [
    path("", merchant_views.dashboard, name="dashboard"),
    path("api-keys/", api_key_views.api_keys, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", api_key_views.api_key_revoke_view, name="api-key-revoke"),
    path("api-usage/", api_key_views.api_usage, name="api-usage"),
    path("api-usage.json", api_key_views.api_usage_json, name="api-usage-json"),
]
