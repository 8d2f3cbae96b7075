"""Experiments, trials, validations, checkpoints and garbage-collection runs."""

import uuid as uuid_lib

from django.conf import settings
from django.db import models
from django.db.models import Q

from ckptweb.jobs import Run
from ckptweb.lib.policy import DEFAULT_POLICY, DELETE_EVERYTHING, POLICY_FIELDS, Policy
from experiments.choices import (
    CheckpointState,
    ExperimentState,
    GCReason,
    GCRunState,
    TrialState,
)

# GC candidates (experiments.choices.GC_CANDIDATE_STATES), as partial-index conditions.
CANDIDATE = Q(state__in=["COMPLETED", "PARTIALLY_DELETED"])
CANDIDATE_WITH_METRIC = CANDIDATE & Q(validation_metric__isnull=False)


class Experiment(models.Model):
    """A training experiment: its config, searcher metric, storage and GC policy.

    ``config`` is the parsed experiment config with secrets redacted and ``config_yaml``
    its YAML rendering; secrets from ``checkpoint_storage`` go to the StorageConfig only.
    A ``save_*`` field left null falls back to the storage's default, then to 0/1/1.
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
            # Chart sampling (experiments.chart_data.spread): each trial's first and last id.
            models.Index(fields=["trial", "id"], name="validation_trial_id_idx"),
        ]

    def __str__(self) -> str:
        return f"Validation of trial {self.trial_id} at {self.steps_completed}"


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

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Retention (experiments.retention.retained_query): one partial index per window
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
            # Chart markers (experiments.chart_data.spread): index probes by id over candidates.
            models.Index(
                fields=["experiment", "id"], name="ckpt_candidate_id_idx", condition=CANDIDATE
            ),
            # GC worker (experiments.gc.delete_claimed): a run's next batch of DELETING rows in
            # uuid order, read from the index and stopped at the batch size; without it each
            # batch sorted every row the run still held (quadratic: 100k went at a third of
            # 10k's rate).
            models.Index(
                fields=["gc_run", "uuid"],
                name="ckpt_deleting_run_idx",
                condition=Q(state="DELETING"),
            ),
            # Dashboard: checkpoint table sorted by metric.
            models.Index(fields=["experiment", "validation_metric"], name="checkpoint_metric_idx"),
            models.Index(fields=["experiment", "-id"], name="checkpoint_exp_id_idx"),
            models.Index(fields=["trial", "steps_completed"], name="checkpoint_trial_step_idx"),
            models.Index(
                fields=["state"],
                name="checkpoint_gc_pending_idx",
                condition=Q(state__in=["DELETING", "ERROR"]),
            ),
        ]

    def __str__(self) -> str:
        return str(self.uuid)

    def save(self, *args, **kwargs):
        if self.trial_id and not self.experiment_id:
            self.experiment_id = self.trial.experiment_id
        super().save(*args, **kwargs)


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


class GCRun(Run):
    """One garbage-collection run of an experiment: what it deleted and what failed.

    ``policy`` is the policy it applied; ``errors`` is a list of
    ``{"checkpoint": uuid, "error": text}``. Its lifecycle (claim, heartbeat, finish,
    retirement when the heartbeat stops) is ``ckptweb.jobs``'.
    """

    State = GCRunState

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


from experiments.models_registry import Model, ModelVersion  # noqa: E402  (registers them)

__all__ = [
    "Checkpoint",
    "Experiment",
    "ExperimentSummary",
    "GCRun",
    "Model",
    "ModelVersion",
    "Trial",
    "Validation",
]
