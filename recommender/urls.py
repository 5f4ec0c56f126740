"""The partner API, version 1 (mounted at /api/v1/)."""

from django.urls import path

from recommender import apis

app_name = "api"

urlpatterns = [
    path("health/", apis.HealthApi.as_view(), name="health"),
    path("products/", apis.ProductListApi.as_view(), name="products"),
    path("products/<int:product_id>/", apis.ProductDetailApi.as_view(), name="product"),
    path("products/<int:product_id>/similar/", apis.SimilarProductsApi.as_view(), name="similar"),
    path(
        "products/sku/<str:sku>/similar/",
        apis.SimilarProductsBySkuApi.as_view(),
        name="similar-by-sku",
    ),
    path("search/image/", apis.ImageSearchApi.as_view(), name="image-search"),
    path("usage/", apis.UsageApi.as_view(), name="usage"),
    # 404 unless LOOKALIKE_API_BENCH_ENDPOINTS is on (scripts/bench_api.py).
    path("bench/noop/", apis.BenchNoopApi.as_view(), name="bench-noop"),
    path("bench/noop-keyed/", apis.BenchKeyedNoopApi.as_view(), name="bench-noop-keyed"),
]
