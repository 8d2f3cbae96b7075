"""Trial logs: the lines a training process printed, shipped by its client (bounded)."""

from __future__ import annotations

from django.db import models

from experiments.models.experiments import Trial


class TrialLog(models.Model):
    """One line a trial's process printed (``experiments.logs.append_trial_logs``, the writer).

    Bounded per trial: the writer keeps the latest ``experiments.logs.MAX_TRIAL_LINES``.
    """

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="log_lines")
    line = models.TextField()
    logged_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial_id", "id"]
        indexes = [models.Index(fields=["trial", "id"], name="trial_log_idx")]

    def __str__(self) -> str:
        return f"Log line {self.pk} of trial {self.trial_id}"
