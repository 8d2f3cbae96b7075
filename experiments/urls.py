"""Experiment pages (namespace ``experiments``; the API's route names stay unprefixed)."""

from django.urls import path

from experiments import bulk, compare, files_views, registry_pages, search, views

app_name = "experiments"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("experiments/<int:pk>/", views.experiment_detail, name="detail"),
    path("experiments/<int:pk>/gc/", views.experiment_gc, name="gc"),
    path("experiments/<int:pk>/gc/counts/", views.experiment_gc_counts, name="gc-counts"),
    path("experiments/<int:pk>/gc/preview/", views.experiment_gc_preview, name="gc-preview"),
    path("gc-runs/<int:pk>/card/", views.gc_run_card, name="gc-run-card"),
    path("trials/<int:pk>/", views.trial_detail, name="trial"),
    path("checkpoints/<uuid:uuid>/", views.checkpoint_detail, name="checkpoint"),
    path("checkpoints/<uuid:uuid>/protect/", views.checkpoint_protect, name="checkpoint-protect"),
    path("checkpoints/<uuid:uuid>/rm/", files_views.checkpoint_rm, name="checkpoint-rm"),
    path(
        "checkpoints/<uuid:uuid>/rm/preview/",
        files_views.checkpoint_rm_preview,
        name="checkpoint-rm-preview",
    ),
    path(
        "checkpoints/<uuid:uuid>/register/",
        registry_pages.checkpoint_register,
        name="checkpoint-register",
    ),
    path("models/", registry_pages.model_list, name="models"),
    path("models/<str:name>/", registry_pages.model_detail, name="model"),
    path("search/", search.checkpoint_search, name="search"),
    path("compare/", compare.compare, name="compare"),
    path("checkpoints/bulk/", bulk.bulk_action, name="bulk"),
]
