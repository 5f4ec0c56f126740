from django.urls import path

from recommender.aesthetics import views as aesthetics_views
from shop import merchant_views

app_name = "merchant"

urlpatterns = [
    path("", merchant_views.dashboard, name="dashboard"),
    path("photos/", aesthetics_views.photo_quality, name="photo-quality"),
]
