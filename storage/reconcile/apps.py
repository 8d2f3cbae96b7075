from django.apps import AppConfig


class ReconcileConfig(AppConfig):
    """Storage reconciliation: an app above experiments (it compares storage with checkpoints)."""

    name = "storage.reconcile"
    label = "reconcile"
    verbose_name = "Storage reconciliation"
