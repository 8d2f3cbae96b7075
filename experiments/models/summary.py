"""Per-experiment counters kept by the services (ingest, protect, GC)."""

from __future__ import annotations

from django.db import models

from experiments.models.experiments import Experiment


class ExperimentSummary(models.Model):
    """Per-experiment counters the pages read instead of aggregating every checkpoint.

    Kept by ``experiments.summary`` (F() deltas from ingest, protect and GC; ``refresh`` for
    a full recompute). ``live``/``live_bytes``: not DELETED; ``candidates``: COMPLETED or
    PARTIALLY_DELETED, ``candidate_bytes`` their bytes (the GC preview's total); ``protected``:
    any state; ``best_metric``: over every checkpoint with a metric, by the experiment's
    direction.
    """

    experiment = models.OneToOneField(
        Experiment, on_delete=models.CASCADE, primary_key=True, related_name="summary"
    )
    live = models.BigIntegerField(default=0)
    deleted = models.BigIntegerField(default=0)
    # Exact and unbounded like ByteSum on PostgreSQL: checkpoints of up to 2**63 bytes each
    # add up past bigint.
    live_bytes = models.DecimalField(max_digits=30, decimal_places=0, default=0)
    candidates = models.BigIntegerField(default=0)
    candidate_bytes = models.DecimalField(max_digits=30, decimal_places=0, default=0)
    protected = models.BigIntegerField(default=0)
    best_metric = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Summary of experiment {self.experiment_id}"
