"""Experiment REST routes (mounted under /api/v1/), kebab-case, no trailing slash."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from experiments.api import (
    audit,
    batch_views,
    best,
    downloads,
    files_views,
    registry_views,
    uploads,
    views,
)

router = SimpleRouter(trailing_slash=False)
router.register("experiments", views.ExperimentViewSet, basename="experiment")
router.register("trials", views.TrialViewSet, basename="trial")
router.register("checkpoints", views.CheckpointViewSet, basename="checkpoint")
router.register("gc-runs", views.GCRunViewSet, basename="gc-run")
router.register("models", registry_views.ModelViewSet, basename="model")

ID = r"(?P<{}>[^/]+)"

urlpatterns = [
    path("audit-events", audit.AuditEventList.as_view(), name="audit-events"),
    re_path(
        rf"^experiments/{ID.format('experiment_id')}/checkpoints$",
        views.ExperimentCheckpointList.as_view(),
        name="experiment-checkpoints",
    ),
    re_path(
        rf"^experiments/{ID.format('experiment_id')}/best-checkpoint$",
        best.BestCheckpointView.as_view(),
        name="experiment-best-checkpoint",
    ),
    re_path(
        rf"^experiments/{ID.format('experiment_id')}/trials$",
        views.ExperimentTrialList.as_view(),
        name="experiment-trials",
    ),
    re_path(
        rf"^trials/{ID.format('trial_id')}/validations$",
        views.TrialValidationList.as_view(),
        name="trial-validations",
    ),
    re_path(
        rf"^trials/{ID.format('trial_id')}/metrics$",
        views.TrialMetricsList.as_view(),
        name="trial-metrics",
    ),
    re_path(
        rf"^trials/{ID.format('trial_id')}/checkpoints$",
        views.TrialCheckpointList.as_view(),
        name="trial-checkpoints",
    ),
    re_path(
        rf"^trials/{ID.format('trial_id')}/checkpoints:batch$",
        batch_views.TrialCheckpointBatch.as_view(),
        name="trial-checkpoints-batch",
    ),
    re_path(
        rf"^trials/{ID.format('trial_id')}/validations:batch$",
        batch_views.TrialValidationBatch.as_view(),
        name="trial-validations-batch",
    ),
    re_path(
        rf"^trials/{ID.format('trial_id')}/uploads$",
        uploads.TrialUploadList.as_view(),
        name="trial-uploads",
    ),
    re_path(rf"^uploads/{ID.format('upload_id')}$", uploads.UploadDetail.as_view(), name="upload"),
    re_path(
        rf"^uploads/{ID.format('upload_id')}/complete$",
        uploads.UploadComplete.as_view(),
        name="upload-complete",
    ),
    re_path(
        rf"^uploads/{ID.format('upload_id')}/files/(?P<path>.+)$",
        uploads.UploadFile.as_view(),
        name="upload-file",
    ),
    re_path(
        r"^checkpoints/(?P<uuid>[^/]+)/rm$",
        files_views.CheckpointFilesDelete.as_view(),
        name="checkpoint-rm",
    ),
    re_path(
        rf"^models/{ID.format('name')}/versions$",
        registry_views.ModelVersionList.as_view(),
        name="model-versions",
    ),
    re_path(
        rf"^models/{ID.format('name')}/versions/{ID.format('version')}$",
        registry_views.ModelVersionDetail.as_view(),
        name="model-version",
    ),
    re_path(
        rf"^models/{ID.format('name')}/versions/{ID.format('version')}/download$",
        registry_views.ModelVersionDownloadView.as_view(),
        name="model-version-download",
    ),
    *router.urls,
    path(
        "checkpoints/<uuid:uuid>/download",
        downloads.CheckpointDownloadView.as_view(),
        name="checkpoint-download",
    ),
    path(
        "checkpoints/<uuid:uuid>/urls",
        downloads.CheckpointURLsView.as_view(),
        name="checkpoint-urls",
    ),
    path(
        "checkpoints/<uuid:uuid>/files/<path:path>",
        downloads.CheckpointFileView.as_view(),
        name="checkpoint-file",
    ),
]
