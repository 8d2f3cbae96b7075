"""Experiment pages (namespace ``experiments``; the API's route names stay unprefixed)."""

from django.urls import path

from experiments import bulk, compare, search, views

app_name = "experiments"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("experiments/<int:pk>/", views.experiment_detail, name="detail"),
    path("experiments/<int:pk>/gc/", views.experiment_gc, name="gc"),
    path("experiments/<int:pk>/gc/preview/", views.experiment_gc_preview, name="gc-preview"),
    path("gc-runs/<int:pk>/card/", views.gc_run_card, name="gc-run-card"),
    path("trials/<int:pk>/", views.trial_detail, name="trial"),
    path("checkpoints/<uuid:uuid>/", views.checkpoint_detail, name="checkpoint"),
    path("checkpoints/<uuid:uuid>/protect/", views.checkpoint_protect, name="checkpoint-protect"),
    path("search/", search.checkpoint_search, name="search"),
    path("compare/", compare.compare, name="compare"),
    path("checkpoints/bulk/", bulk.bulk_action, name="bulk"),
]
