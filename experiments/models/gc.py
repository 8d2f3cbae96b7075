"""Garbage-collection runs: one deletion of checkpoints, with its progress and outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ckptweb.jobs import Run, RunState
from ckptweb.lib.policy import Policy
from experiments.choices import (
    GCReason,
)
from experiments.models.checkpoints import Checkpoint
from experiments.models.experiments import Experiment


class GCRun(Run):
    """One garbage-collection run of an experiment: what it deleted and what failed.

    ``policy`` is the policy it applied; ``errors`` is a list of
    ``{"checkpoint": uuid, "error": text}``. Its lifecycle (claim, heartbeat, finish,
    retirement when the heartbeat stops) is ``ckptweb.jobs``'.
    """

    State = RunState

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="gc_runs")
    reason = models.CharField(max_length=24, choices=GCReason.choices)
    policy = models.JSONField(default=dict)
    checkpoint = models.ForeignKey(
        Checkpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="For a single-checkpoint deletion: the checkpoint to delete.",
    )
    globs = models.JSONField(
        default=list,
        blank=True,
        help_text="For a FILES run: the globs selecting the checkpoint's files to delete.",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who started the run; empty for automatic runs (experiment ended, sweep).",
    )
    total = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    reclaimed_bytes = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["experiment", "-id"], name="gcrun_experiment_idx"),
            models.Index(fields=["state"], name="gcrun_state_idx"),
        ]

    def __str__(self) -> str:
        return f"GC run {self.pk} of experiment {self.experiment_id}"

    @property
    def processed(self) -> int:
        """Checkpoints decided so far (deleted or failed), for the progress bar."""
        return self.deleted + self.failed

    def scrub(self, text: str) -> str:
        return self.experiment.storage.scrub(text)

    @property
    def gc_policy(self) -> Policy:
        """``policy`` (the recorded ``as_dict()``) as a Policy, e.g. to print "0/1/1"."""
        return Policy.from_mapping(self.policy or {})
