"""Experiments, their trials and the trials' validations."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ckptweb.lib.errors import Conflict
from ckptweb.lib.policy import DEFAULT_POLICY, DELETE_EVERYTHING, POLICY_FIELDS, Policy
from experiments.choices import (
    ExperimentState,
    TrialState,
)


class Experiment(models.Model):
    """A training experiment: its config, searcher metric, storage and GC policy.

    ``config`` is the parsed experiment config with secrets redacted and ``config_yaml``
    its YAML rendering; secrets from ``checkpoint_storage`` go to the StorageConfig only.
    A ``save_*`` field left null falls back to the storage's default, then to 0/1/1.
    ``labels``, ``notes`` and ``archived`` are its lifecycle fields (DESIGN.md "Experiment
    lifecycle and short ids"), written by ``services.update_experiment`` only; an archived
    experiment is left out of lists unless asked for.
    """

    State = ExperimentState

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="experiments"
    )
    config = models.JSONField(default=dict, blank=True)
    config_yaml = models.TextField(blank=True)
    searcher_metric = models.CharField(max_length=255)
    smaller_is_better = models.BooleanField(default=True)
    state = models.CharField(
        max_length=16, choices=ExperimentState.choices, default=ExperimentState.ACTIVE
    )
    storage = models.ForeignKey(
        "storage.StorageConfig", on_delete=models.PROTECT, related_name="experiments"
    )
    labels = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    archived = models.BooleanField(default=False)
    save_experiment_best = models.PositiveIntegerField(null=True, blank=True)
    save_trial_best = models.PositiveIntegerField(null=True, blank=True)
    save_trial_latest = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "-id"], name="experiment_state_idx"),
            models.Index(fields=["owner", "-id"], name="experiment_owner_idx"),
            models.Index(fields=["archived", "-id"], name="experiment_archived_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def gc_policy(self) -> Policy:
        """The effective GC policy: own values, else the storage's defaults, else 0/1/1."""
        fallback = self.storage.default_policy() if self.storage_id else DEFAULT_POLICY
        return Policy.from_mapping(
            {field: getattr(self, field) for field in POLICY_FIELDS}, fallback
        )

    @property
    def applied_policy(self) -> Policy:
        """The policy a GC run applies now: 0/0/0 while DELETING, else ``gc_policy``."""
        if self.state == ExperimentState.DELETING:
            return DELETE_EVERYTHING
        return self.gc_policy

    def ensure_not_deleting(self) -> None:
        """Nothing may be added to or changed in an experiment that is being deleted (Conflict).

        The one place of the rule: every service that adds to or changes an experiment, its
        trials or its checkpoints calls it (with the experiment's row locked where it writes).
        """
        if self.state == ExperimentState.DELETING:
            raise Conflict(f"experiment {self.pk} is being deleted.")


class Trial(models.Model):
    """One trial of an experiment, with its hyperparameters."""

    State = TrialState

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="trials")
    hparams = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=TrialState.choices, default=TrialState.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Trial {self.pk}"


class Validation(models.Model):
    """Validation metrics a trial reported after ``steps_completed`` steps."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="validations")
    steps_completed = models.PositiveBigIntegerField()
    metrics = models.JSONField(default=dict)
    report_time = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial_id", "steps_completed", "id"]
        indexes = [
            models.Index(fields=["trial", "steps_completed", "-id"], name="validation_step_idx"),
            # Chart sampling (experiments.charts.data.spread): each trial's first and last id.
            models.Index(fields=["trial", "id"], name="validation_trial_id_idx"),
        ]

    def __str__(self) -> str:
        return f"Validation of trial {self.trial_id} at {self.steps_completed}"
