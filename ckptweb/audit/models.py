"""``AuditEvent``: one row per action that deletes data or changes who may do what.

Rows are appended and never edited: ``save`` refuses an existing row and the manager's
``update`` refuses every row. Only the retention (``ckptweb.audit.record.prune``) deletes,
rows older than ``CKPTWEB_AUDIT_RETENTION_DAYS``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    GC_POLICY_SET = "gc_policy.set", "GC policy set"
    GC_RUN_STARTED = "gc_run.start", "GC run started"
    CHECKPOINT_DELETE = "checkpoint.delete", "Checkpoint deleted"
    CHECKPOINT_RM = "checkpoint.rm", "Checkpoint files deleted"
    CHECKPOINT_PROTECT = "checkpoint.protect", "Checkpoint protected"
    CHECKPOINT_UNPROTECT = "checkpoint.unprotect", "Checkpoint unprotected"
    EXPERIMENT_DELETE = "experiment.delete", "Experiment deleted"
    MODEL_CREATE = "model.create", "Model created"
    MODEL_DELETE = "model.delete", "Model deleted"
    VERSION_REGISTER = "model_version.register", "Model version registered"
    VERSION_DELETE = "model_version.delete", "Model version deleted"
    STORAGE_CREATE = "storage.create", "Storage added"
    STORAGE_CHANGE = "storage.change", "Storage changed"
    STORAGE_DELETE = "storage.delete", "Storage deleted"
    TOKEN_CREATE = "token.create", "Token created"
    TOKEN_REVOKE = "token.revoke", "Token revoked"
    SIGN_IN = "signin", "Signed in"
    SIGN_IN_FAILED = "signin.failed", "Sign-in failed"


class AppendOnly(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("audit events are never edited")


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The actor's username when the event happened ("" for the system), kept if the
    #: account is deleted or renamed.
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64, blank=True)
    #: The experiment the event is about (no foreign key: the event outlives it).
    experiment_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    #: The owner of what the event is about (its experiment's or model's), who may read it.
    owner_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AppendOnly.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["actor", "-at"], name="audit_actor_at")]

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target_type} {self.target_id}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit events are never edited")
        super().save(*args, **kwargs)
