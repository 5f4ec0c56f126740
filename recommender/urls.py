from django.urls import path

from recommender.apis import ImageSearchApi, SimilarProductsApi

app_name = "api"

urlpatterns = [
    path("products/<int:product_id>/similar/", SimilarProductsApi.as_view(), name="similar"),
    path("search/image/", ImageSearchApi.as_view(), name="image-search"),
]
