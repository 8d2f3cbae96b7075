"""Metrics groups other than validations: ``training`` and any group a client names.

DESIGN.md "Metrics groups": validations (``models.Validation``) keep the searcher metric that
retention reads; every other group is stored here, one row per report, and charted on the
trial page. Retention and GC never read these rows.
"""

from __future__ import annotations

from django.db import models

from experiments.models.experiments import Trial


class TrialMetrics(models.Model):
    """Metrics of ``group`` (e.g. ``training``) a trial reported after ``steps_completed`` steps.

    As for validations, a step may be reported more than once: the latest report wins.
    Written by ``experiments.services.report_metrics`` only.
    """

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="metrics_reports")
    group = models.CharField(max_length=64)
    steps_completed = models.PositiveBigIntegerField()
    metrics = models.JSONField(default=dict)
    report_time = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial_id", "group", "steps_completed", "id"]
        verbose_name_plural = "trial metrics"
        indexes = [
            models.Index(
                fields=["trial", "group", "steps_completed", "id"], name="metrics_step_idx"
            ),
            # Chart sampling (experiments.charts.data.spread) by id within a trial's group.
            models.Index(fields=["trial", "group", "id"], name="metrics_trial_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.group} metrics of trial {self.trial_id} at {self.steps_completed}"
