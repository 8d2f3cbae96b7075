"""Checkpoints: a trial's files on storage, with their state, flags and metadata."""

from __future__ import annotations

import uuid as uuid_lib

from django.db import models
from django.db.models import Q

from experiments.choices import (
    GC_CANDIDATE_STATES,
    CheckpointState,
)
from experiments.models.experiments import Experiment, Trial

# GC candidates (experiments.choices.GC_CANDIDATE_STATES), as partial-index conditions.
CANDIDATE = Q(state__in=list(GC_CANDIDATE_STATES))
CANDIDATE_WITH_METRIC = CANDIDATE & Q(validation_metric__isnull=False)


class Checkpoint(models.Model):
    """A checkpoint: a directory ``<uuid>/`` of files on the experiment's storage.

    ``experiment`` repeats ``trial.experiment`` so that retention and dashboard queries
    run on one table. ``validation_metric`` is the searcher metric of the trial's latest
    validation at the same ``steps_completed``; it is kept in step by
    ``experiments.services.link_validation`` whichever of the two is reported first.
    ``resources`` maps relative file paths to sizes in bytes; ``size_bytes`` is their sum.
    """

    State = CheckpointState

    uuid = models.UUIDField(default=uuid_lib.uuid4, unique=True, editable=False)
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="checkpoints", editable=False
    )
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="checkpoints")
    steps_completed = models.PositiveBigIntegerField()
    report_time = models.DateTimeField(auto_now_add=True)
    state = models.CharField(
        max_length=20, choices=CheckpointState.choices, default=CheckpointState.COMPLETED
    )
    resources = models.JSONField(default=dict, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    validation_metric = models.FloatField(null=True, blank=True, editable=False)
    protected = models.BooleanField(default=False)
    gc_run = models.ForeignKey(
        "GCRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="claimed_checkpoints",
        help_text="The GC run that holds this checkpoint while it is DELETING.",
    )
    error = models.TextField(blank=True, help_text="Last deletion error (secrets stripped).")
    deletion_failures = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Deletions of its files that failed in a row (experiments.gc.record).",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Retention (experiments.gc.retention.retained_query): one partial index per window
            # order, so each ROW_NUMBER() reads candidates in index order without sorting.
            models.Index(
                fields=["experiment", "trial", "-steps_completed", "-id"],
                name="ckpt_latest_idx",
                condition=CANDIDATE,
                include=["size_bytes"],
            ),
            models.Index(
                fields=["experiment", "trial", "validation_metric", "steps_completed", "id"],
                name="ckpt_trial_best_idx",
                condition=CANDIDATE_WITH_METRIC,
                include=["size_bytes"],
            ),
            models.Index(
                fields=["experiment", "trial", "-validation_metric", "steps_completed", "id"],
                name="ckpt_trial_best_desc_idx",
                condition=CANDIDATE_WITH_METRIC,
                include=["size_bytes"],
            ),
            models.Index(
                fields=["experiment", "validation_metric", "steps_completed", "id"],
                name="ckpt_best_idx",
                condition=CANDIDATE_WITH_METRIC,
            ),
            models.Index(
                fields=["experiment", "-validation_metric", "steps_completed", "id"],
                name="ckpt_best_desc_idx",
                condition=CANDIDATE_WITH_METRIC,
            ),
            models.Index(
                fields=["experiment"], name="ckpt_protected_idx", condition=Q(protected=True)
            ),
            # Chart markers (experiments.charts.data.spread): index probes by id over candidates.
            models.Index(
                fields=["experiment", "id"], name="ckpt_candidate_id_idx", condition=CANDIDATE
            ),
            # GC worker (gc.execute.delete_claimed): a run's next batch of DELETING rows in
            # uuid order, read from the index and stopped at the batch size; without it each
            # batch sorted every row the run still held (quadratic: 100k went at a third of
            # 10k's rate).
            models.Index(
                fields=["gc_run", "uuid"],
                name="ckpt_deleting_run_idx",
                condition=Q(state=CheckpointState.DELETING),
            ),
            # Dashboard: checkpoint table sorted by metric.
            models.Index(fields=["experiment", "validation_metric"], name="checkpoint_metric_idx"),
            models.Index(fields=["experiment", "-id"], name="checkpoint_exp_id_idx"),
            models.Index(fields=["trial", "steps_completed"], name="checkpoint_trial_step_idx"),
            models.Index(
                fields=["state"],
                name="checkpoint_gc_pending_idx",
                condition=Q(state__in=[CheckpointState.DELETING, CheckpointState.ERROR]),
            ),
        ]

    def __str__(self) -> str:
        return str(self.uuid)

    def save(self, *args, **kwargs):
        if self.trial_id and not self.experiment_id:
            self.experiment_id = self.trial.experiment_id
        super().save(*args, **kwargs)
