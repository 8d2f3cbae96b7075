"""Storage REST routes (mounted under /api/v1/): downloads, direct URLs, reconciliation."""

from django.urls import include, path

from storage.api import direct_views, views

urlpatterns = [
    path(
        "checkpoints/<uuid:uuid>/download",
        views.CheckpointDownloadView.as_view(),
        name="checkpoint-download",
    ),
    path(
        "checkpoints/<uuid:uuid>/urls",
        direct_views.CheckpointURLsView.as_view(),
        name="checkpoint-urls",
    ),
    path(
        "checkpoints/<uuid:uuid>/files/<path:path>",
        views.CheckpointFileView.as_view(),
        name="checkpoint-file",
    ),
    path("", include("storage.reconcile.api_urls")),
]
