from django.urls import path

from shop import import_views, merchant_views

app_name = "merchant"

urlpatterns = [
    path("", merchant_views.dashboard, name="dashboard"),
    path("products/new/", merchant_views.product_add, name="product-add"),
    path("products/<int:pk>/", merchant_views.product_edit, name="product-edit"),
    path("products/<int:pk>/stock/", merchant_views.product_stock, name="product-stock"),
    path("products/<int:pk>/delete/", merchant_views.product_delete_view, name="product-delete"),
    path("import/", import_views.import_page, name="import"),
    path("imports/<int:pk>/", import_views.import_job_detail, name="import-job"),
    path("imports/<int:pk>/status/", import_views.import_job_status, name="import-job-status"),
]
