"""Experiment pages."""

urlpatterns: list = []
