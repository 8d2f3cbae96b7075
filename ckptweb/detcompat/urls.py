"""Routes of the Determined compatibility layer, mounted at ``/det-compat/`` (no slashes)."""

from django.urls import re_path

from ckptweb.detcompat import metrics, registry, training, views

ID = r"(?P<experiment_id>[^/]+)"
TRIAL = r"(?P<trial_id>[^/]+)"
LABEL = r"(?P<label>[^/]+)"
UUID = r"(?P<uuid>[^/]+)"

app_name = "detcompat"

urlpatterns = [
    re_path(r"^info$", views.InfoView.as_view(), name="info"),
    re_path(r"^api/v1/auth/login$", views.LoginView.as_view(), name="login"),
    re_path(r"^api/v1/auth/logout$", views.LogoutView.as_view(), name="logout"),
    re_path(r"^api/v1/me$", views.MeView.as_view(), name="me"),
    re_path(r"^api/v1/master$", views.MasterView.as_view(), name="master"),
    re_path(r"^api/v1/users$", views.UsersView.as_view(), name="users"),
    re_path(r"^api/v1/experiments$", training.ExperimentsView.as_view(), name="experiments"),
    re_path(rf"^api/v1/experiments/{ID}$", views.ExperimentView.as_view(), name="experiment"),
    re_path(
        rf"^api/v1/experiments/{ID}/archive$",
        views.ExperimentArchiveView.as_view(),
        name="experiment-archive",
    ),
    re_path(
        rf"^api/v1/experiments/{ID}/unarchive$",
        views.ExperimentUnarchiveView.as_view(),
        name="experiment-unarchive",
    ),
    re_path(
        rf"^api/v1/experiments/{ID}/labels/{LABEL}$",
        views.ExperimentLabelView.as_view(),
        name="experiment-label",
    ),
    re_path(
        rf"^api/v1/experiments/{ID}/trials$",
        views.ExperimentTrialsView.as_view(),
        name="experiment-trials",
    ),
    re_path(rf"^api/v1/trials/{TRIAL}$", training.TrialView.as_view(), name="trial"),
    re_path(
        rf"^api/v1/trials/{TRIAL}/workloads$",
        views.TrialWorkloadsView.as_view(),
        name="trial-workloads",
    ),
    re_path(
        rf"^api/v1/trials/{TRIAL}/checkpoints$",
        views.TrialCheckpointsView.as_view(),
        name="trial-checkpoints",
    ),
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
    re_path(
        rf"^api/v1/checkpoints/{UUID}/metadata$",
        views.CheckpointMetadataView.as_view(),
        name="checkpoint-metadata",
    ),
    re_path(rf"^checkpoints/{UUID}$", views.CheckpointDownloadView.as_view(), name="download"),
    # model registry
    re_path(r"^api/v1/models$", registry.ModelsView.as_view(), name="models"),
    re_path(r"^api/v1/model/labels$", registry.ModelLabelsView.as_view(), name="model-labels"),
    re_path(r"^api/v1/models/(?P<name>[^/]+)$", registry.ModelView.as_view(), name="model"),
    re_path(
        r"^api/v1/models/(?P<name>[^/]+)/versions$",
        registry.ModelVersionsView.as_view(),
        name="model-versions",
    ),
    re_path(
        r"^api/v1/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
        registry.ModelVersionView.as_view(),
        name="model-version",
    ),
    # training (Core API) and metrics
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
    # Keep last: every other /det-compat/ route is a JSON 501 naming it.
    re_path(r"^.*$", views.NotServedView.as_view(), name="not-served"),
]
