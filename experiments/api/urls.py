"""Experiment REST routes (mounted under /api/v1/)."""

urlpatterns: list = []
