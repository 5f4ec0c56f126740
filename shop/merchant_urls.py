from django.urls import path

from shop import import_views, merchant_views

app_name = "merchant"

urlpatterns = [
    path("", merchant_views.dashboard, name="dashboard"),
    path("import/", import_views.import_page, name="import"),
    path("imports/<int:pk>/", import_views.import_job_detail, name="import-job"),
    path("imports/<int:pk>/status/", import_views.import_job_status, name="import-job-status"),
]
