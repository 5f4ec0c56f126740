from django.urls import path

from recommender.aesthetics import views as aesthetics_views
from shop import views

app_name = "shop"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("products/<int:pk>/", views.product_detail, name="product"),
    path("products/<int:pk>/similar/", views.similar, name="similar"),
    path("search/photo/", views.photo_search, name="photo-search"),
    path("similar/click/", aesthetics_views.similar_click, name="similar-click"),
]
