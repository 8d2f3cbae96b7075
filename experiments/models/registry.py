"""The model registry: named Models whose numbered ModelVersions pin checkpoints.

A registered checkpoint is never garbage-collected (``experiments.gc.retention`` keeps it like
``protected``, ``experiments.gc.execute`` never claims it); the rules live in
``experiments.registry``. Imported by ``experiments.models`` so Django finds the models.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

#: Model names appear in URLs and shell commands: letters, digits, ``.``, ``_``, ``-``.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MODEL_NAME_MAX_LENGTH = 128
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/=+-]*$"
LABEL_MAX_LENGTH = 64
MAX_LABELS = 32


class Model(models.Model):
    """A named model (``resnet-prod``) whose versions pin the checkpoints to deploy.

    ``labels`` is a list of short strings; ``label_index`` repeats them as ``,a,b,`` so
    ``?label=`` is one portable ``LIKE`` on SQLite and PostgreSQL. ``last_version`` counts
    the versions ever registered, so a deleted version's number is never given again.
    """

    name = models.CharField(max_length=MODEL_NAME_MAX_LENGTH, unique=True)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=list, blank=True)
    label_index = models.TextField(blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registry_models"
    )
    last_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.label_index = f",{','.join(self.labels)}," if self.labels else ""
        super().save(*args, **kwargs)


class ModelVersion(models.Model):
    """Version ``version`` (1, 2, …) of a model: one checkpoint, a comment, who and when.

    The checkpoint is PROTECTed: its row cannot go while a version pins it.
    """

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    checkpoint = models.ForeignKey(
        "experiments.Checkpoint", on_delete=models.PROTECT, related_name="model_versions"
    )
    comment = models.TextField(blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="registered_model_versions",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def label(self) -> str:
        """``NAME vN``, as GC previews and 409 messages name it."""
        return f"{self.model.name} v{self.version}"


class RetiredModelName(models.Model):
    """The name of a deleted model, kept for its owner: nobody else may take it.

    ``squat v1`` must never come to mean another user's checkpoint. The owner may create
    the model again; its versions then go on from ``last_version``, so no number is reused.
    """

    name = models.CharField(max_length=MODEL_NAME_MAX_LENGTH, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_version = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} (retired)"
