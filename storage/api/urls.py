"""Storage REST routes (mounted under /api/v1/): checkpoint downloads and direct URLs."""

from django.urls import path

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
]
