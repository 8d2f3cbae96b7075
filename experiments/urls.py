"""Experiment pages (namespace ``experiments``; the API's route names stay unprefixed)."""

from django.urls import path

from experiments.views import audit, bulk, checkpoints, compare, experiments, gc, registry, search

app_name = "experiments"

urlpatterns = [
    path("", experiments.experiment_list, name="list"),
    path("experiments/<int:pk>/", experiments.experiment_detail, name="detail"),
    path("experiments/<int:pk>/gc/", gc.experiment_gc, name="gc"),
    path("experiments/<int:pk>/gc/counts/", gc.experiment_gc_counts, name="gc-counts"),
    path("experiments/<int:pk>/gc/preview/", gc.experiment_gc_preview, name="gc-preview"),
    path("gc-runs/<int:pk>/card/", gc.gc_run_card, name="gc-run-card"),
    path("trials/<int:pk>/", experiments.trial_detail, name="trial"),
    path("checkpoints/<uuid:uuid>/", checkpoints.checkpoint_detail, name="checkpoint"),
    path(
        "checkpoints/<uuid:uuid>/protect/",
        checkpoints.checkpoint_protect,
        name="checkpoint-protect",
    ),
    path("checkpoints/<uuid:uuid>/rm/", checkpoints.checkpoint_rm, name="checkpoint-rm"),
    path(
        "checkpoints/<uuid:uuid>/rm/preview/",
        checkpoints.checkpoint_rm_preview,
        name="checkpoint-rm-preview",
    ),
    path(
        "checkpoints/<uuid:uuid>/register/",
        registry.checkpoint_register,
        name="checkpoint-register",
    ),
    path("models/", registry.model_list, name="models"),
    path("audit/", audit.audit_log, name="audit"),
    path("models/<str:name>/", registry.model_detail, name="model"),
    path("search/", search.checkpoint_search, name="search"),
    path("compare/", compare.compare, name="compare"),
    path("checkpoints/bulk/", bulk.bulk_action, name="bulk"),
]
