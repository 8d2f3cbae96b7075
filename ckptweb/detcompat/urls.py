"""Routes of the Determined compatibility layer, mounted at ``/det-compat/`` (no slashes)."""

from django.urls import re_path

from ckptweb.detcompat import registry, views

ID = r"(?P<experiment_id>[^/]+)"
UUID = r"(?P<uuid>[^/]+)"

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
    re_path(r"^api/v1/checkpoints$", views.CheckpointsView.as_view(), name="checkpoints"),
    re_path(
        r"^api/v1/checkpoints/rm$",
        views.CheckpointsRemoveFilesView.as_view(),
        name="checkpoints-rm",
    ),
    re_path(rf"^api/v1/checkpoints/{UUID}$", views.CheckpointView.as_view(), name="checkpoint"),
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
    re_path(rf"^experiments/{ID}/preview_gc$", views.PreviewGCView.as_view(), name="preview-gc"),
]
