"""The best live checkpoint of an experiment or a trial, by the searcher metric.

"Best" is retention's order (DESIGN.md): by the validation metric, ascending when
``smaller_is_better`` else descending, ties to fewer steps, then the smaller id; only
checkpoints with a metric qualify. "Live" means its files can be downloaded (COMPLETED or
PARTIALLY_DELETED, the GC candidate states). One indexed query. The pages offer it as
``#download-best``, the API as ``GET experiments/{id}/best-checkpoint[?trial=T]`` and the
CLI as ``ckpt checkpoint download --best EXPERIMENT_ID [--trial T]``.
"""

from __future__ import annotations

from django.db.models import F

from experiments.choices import GC_CANDIDATE_STATES
from experiments.models import Checkpoint, Experiment, Trial


def best_checkpoint(experiment: Experiment, trial: Trial | int | None = None) -> Checkpoint | None:
    """The best downloadable checkpoint of ``experiment`` (of one ``trial``), or None."""
    rows = Checkpoint.objects.filter(
        experiment=experiment, state__in=GC_CANDIDATE_STATES, validation_metric__isnull=False
    )
    if trial is not None:
        rows = rows.filter(trial=trial)
    metric = F("validation_metric")
    order = metric.asc() if experiment.smaller_is_better else metric.desc()
    return rows.select_related("trial").order_by(order, "steps_completed", "id").first()
