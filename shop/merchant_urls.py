from django.urls import path

from shop import merchant_views

app_name = "merchant"

urlpatterns = [
    path("", merchant_views.dashboard, name="dashboard"),
]
