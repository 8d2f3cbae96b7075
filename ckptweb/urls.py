"""Top-level routes: pages, the REST API under /api/v1/ (Determined's under /det-compat/),
its schema and the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("experiments.api.urls")),
    path("det-compat/", include("ckptweb.detcompat.urls")),
    path("api/v1/", include("storage.api.urls")),
    path("api/v1/", include("storage.api.scan_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("storage.urls")),
    path("", include("storage.scan_urls")),
    path("", include("experiments.urls")),
]
