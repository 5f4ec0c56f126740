"""URL routes: storefront pages, the JSON API, the admin and (for the demo) media."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("merchant/", include("shop.merchant_urls")),
    path("api/v1/", include("recommender.urls")),
    path("", include("shop.urls")),
]

if settings.LOOKALIKE_SERVE_MEDIA:
    # django.conf.urls.static.static() serves nothing unless DEBUG is on; the demo runs
    # with DEBUG off, so route media explicitly. Behind a web server, turn this off.
    def media(request: HttpRequest, path: str) -> HttpResponse:
        """A product photo from MEDIA_ROOT (read per request, so tests can move it)."""
        return serve(request, path, document_root=settings.MEDIA_ROOT)

    urlpatterns += [re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.*)$", media)]

handler404 = "recommender.apis.not_found"
