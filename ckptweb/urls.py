"""Top-level routes: pages, the REST API under /api/v1/ (Determined's under /det-compat/),
its schema and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from storage.reconcile import urls as reconcile_urls

urlpatterns = [
    # Browsers ask for /favicon.ico on every page without a <link rel="icon"> (the admin's, JSON).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    # Sign-in, sign-out and password change only: without mail configured, a password-reset
    # page would promise an email that never comes (and fail when it tries to send one).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("api/v1/", include("experiments.api.urls")),
    path("api/v1/", include("ckptweb.accounts.api_urls")),
    path("det-compat/", include("ckptweb.detcompat.urls")),
    path("api/v1/", include("storage.reconcile.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's set-up script as a file (no inline script: CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="swagger-ui",
    ),
    path("", include(reconcile_urls.storage_urlpatterns)),
    path("", include("storage.reconcile.urls")),
    path("", include("ckptweb.accounts.urls")),
    path("", include("experiments.urls")),
]
