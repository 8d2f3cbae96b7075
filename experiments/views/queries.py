"""Read-side queries of the dashboard pages: experiment rows, totals, verdicts, validations.

Query counts do not grow with the number of checkpoints: the experiment list annotates
each row with correlated subqueries (one query for the page), totals are one aggregate,
and a page's GC verdicts come from ``retention.retained`` — the small retained set, where a
candidate not in it is deleted — never from a list of every candidate.
"""

from __future__ import annotations

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from experiments import summary
from experiments.choices import GC_CANDIDATE_STATES, CheckpointState
from experiments.models import Experiment, ExperimentSummary, GCRun, Trial

LIVE = ~Q(state=CheckpointState.DELETED)
EXPERIMENT_SORTS = {
    "name": ["name"],
    "owner": ["owner__username"],
    "state": ["state"],
    "trials": ["n_trials"],
    "checkpoints": ["n_live"],
    "bytes": ["live_bytes"],
    # Grouped by metric, then best first: a loss and an accuracy never share one scale.
    "best": ["searcher_metric", "best_score"],
    "created": ["created_at"],
}


def _per_experiment(queryset, aggregate, output_field):
    """A correlated subquery: ``aggregate`` over ``queryset`` rows of the outer experiment."""
    rows = queryset.filter(experiment=OuterRef("pk")).order_by().values("experiment")
    return Subquery(rows.annotate(v=aggregate).values("v")[:1], output_field=output_field)


def _count_per_experiment(queryset):
    return Coalesce(_per_experiment(queryset, Count("id"), IntegerField()), 0)


def experiments_with_trial_count():
    """Experiments (owner, storage and summary joined), each with ``n_trials``."""
    return Experiment.objects.select_related("owner", "storage", "summary").annotate(
        n_trials=_count_per_experiment(Trial.objects)
    )


def experiment_summary(experiment: Experiment) -> ExperimentSummary:
    """The summary joined by ``experiments_with_trial_count``, built if it has none yet."""
    try:
        return experiment.summary
    except ExperimentSummary.DoesNotExist:
        return summary.refresh(experiment)


def experiment_rows(q: str | None, state: str | None, sort: str):
    """Experiments with trial and checkpoint counts, bytes on storage and best metric.

    Counts, bytes and the best metric are the summary row's (``experiments.summary``), so
    the list costs the same at any number of checkpoints. Experiments without a row yet
    get one first (``summary.build_missing``; one anti-join query when none is missing).
    """
    summary.build_missing(Experiment.objects.filter(summary__isnull=True))
    rows = (
        Experiment.objects.select_related("owner", "storage")
        .annotate(
            n_trials=_count_per_experiment(Trial.objects),
            n_live=Coalesce(F("summary__live"), 0),
            n_deleted=Coalesce(F("summary__deleted"), 0),
            live_bytes=Coalesce(F("summary__live_bytes"), Value(0), output_field=DecimalField()),
            best_metric=F("summary__best_metric"),
        )
        .annotate(
            # Smaller is better for every experiment's score: ascending is best first.
            best_score=Case(
                When(smaller_is_better=True, then=F("best_metric")),
                default=-F("best_metric"),
                output_field=FloatField(),
            )
        )
    )
    if q:
        rows = rows.filter(
            Q(name__icontains=q) | Q(description__icontains=q) | Q(owner__username__icontains=q)
        )
    if state:
        rows = rows.filter(state=state)
    descending = sort.startswith("-")
    fields = EXPERIMENT_SORTS.get(sort.lstrip("-"), ["created_at"])
    order = [
        F(f).desc(nulls_last=True) if descending else F(f).asc(nulls_last=True) for f in fields
    ]
    return rows.order_by(*order, "-id")


def trial_checkpoint_counts(trial: Trial) -> dict:
    """``{"live": n, "deleted": n}`` of a trial's checkpoints (one query)."""
    return trial.checkpoints.aggregate(
        live=Count("id", filter=LIVE), deleted=Count("id", filter=~LIVE)
    )


def trial_validation_stats(trial: Trial) -> dict:
    """``{"count": n, "latest": steps}`` of a trial's validations (one query)."""
    return trial.validations.aggregate(count=Count("id"), latest=Max("steps_completed"))


def verdict(checkpoint, kept: dict[int, int]) -> bool | None:
    """Kept (True) or deleted (False) under the policy whose retained set is ``kept``.

    None for a checkpoint that is no GC candidate (DELETED, DELETING, ERROR).
    """
    if checkpoint.state not in GC_CANDIDATE_STATES:
        return None
    return checkpoint.id in kept


def mark_verdicts(checkpoints, kept: dict[int, int]) -> None:
    """Set ``keep`` (``verdict``) on each checkpoint of a page."""
    for checkpoint in checkpoints:
        checkpoint.keep = verdict(checkpoint, kept)


def latest_run(experiment: Experiment) -> GCRun | None:
    """The experiment's most recent GC run, or None."""
    return experiment.gc_runs.order_by("-id").first()
