"""Routes of the Determined compatibility layer, mounted at ``/det-compat/`` (no slashes)."""

from django.urls import re_path

from ckptweb.detcompat import metrics, training, views

ID = r"(?P<experiment_id>[^/]+)"
UUID = r"(?P<uuid>[^/]+)"
TRIAL = r"(?P<trial_id>[^/]+)"

app_name = "detcompat"

urlpatterns = [
    re_path(r"^info$", views.InfoView.as_view(), name="info"),
    re_path(r"^api/v1/auth/login$", views.LoginView.as_view(), name="login"),
    re_path(r"^api/v1/auth/logout$", views.LogoutView.as_view(), name="logout"),
    re_path(r"^api/v1/me$", views.MeView.as_view(), name="me"),
    re_path(rf"^api/v1/experiments/{ID}$", views.ExperimentView.as_view(), name="experiment"),
    re_path(
        rf"^api/v1/experiments/{ID}/checkpoints$",
        views.ExperimentCheckpointsView.as_view(),
        name="experiment-checkpoints",
    ),
    re_path(r"^api/v1/checkpoints$", training.CheckpointsReportView.as_view(), name="checkpoints"),
    re_path(
        r"^api/v1/checkpoints/rm$",
        views.CheckpointsRemoveFilesView.as_view(),
        name="checkpoints-rm",
    ),
    re_path(rf"^api/v1/checkpoints/{UUID}$", views.CheckpointView.as_view(), name="checkpoint"),
    re_path(rf"^checkpoints/{UUID}$", views.CheckpointDownloadView.as_view(), name="download"),
    # training (Core API) and metrics
    re_path(r"^api/v1/experiments$", training.ExperimentsView.as_view(), name="experiments"),
    re_path(r"^api/v1/master$", training.MasterView.as_view(), name="master"),
    re_path(r"^api/v1/trials$", training.TrialsView.as_view(), name="trials"),
    re_path(
        r"^api/v1/trials/metrics/trial_metrics$",
        metrics.TrialsMetricsView.as_view(),
        name="trials-metrics",
    ),
    re_path(
        r"^api/v1/trials/metrics/validation_metrics$",
        metrics.TrialsValidationMetricsView.as_view(),
        name="trials-validation-metrics",
    ),
    re_path(
        r"^api/v1/trials/metrics/training_metrics$",
        metrics.TrialsTrainingMetricsView.as_view(),
        name="trials-training-metrics",
    ),
    re_path(
        rf"^api/v1/checkpoints/{UUID}/metrics$",
        metrics.CheckpointMetricsView.as_view(),
        name="checkpoint-metrics",
    ),
    re_path(rf"^api/v1/trials/{TRIAL}$", training.TrialView.as_view(), name="trial"),
    re_path(
        rf"^api/v1/trials/{TRIAL}/start$", training.TrialStartView.as_view(), name="trial-start"
    ),
    re_path(
        rf"^api/v1/trials/{TRIAL}/metrics$",
        training.TrialMetricsView.as_view(),
        name="trial-metrics",
    ),
    re_path(rf"^api/v1/trials/{TRIAL}/logs$", training.TrialLogsView.as_view(), name="trial-logs"),
    re_path(r"^api/v1/runs/start$", training.RunStartView.as_view(), name="runs-start"),
    re_path(r"^task-logs$", training.TaskLogsView.as_view(), name="task-logs"),
    re_path(rf"^experiments/{ID}/preview_gc$", views.PreviewGCView.as_view(), name="preview-gc"),
]
