"""One row per experiment of checkpoint counts, bytes and best metric, kept incrementally.

The experiment page and list read ``ExperimentSummary`` instead of aggregating every
checkpoint (issue 17: flat cost from 1k to 1M checkpoints). The services that change a
checkpoint's state, size, protection or metric call ``add`` with the change as deltas —
one UPDATE of F() expressions, so concurrent reporters and GC workers never lose a count:

* ingest (``services.report_checkpoint``, ``batch.report_checkpoints``): live, bytes,
  candidates and their bytes, protected, and the best metric (which only improves on
  insert or when a validation reported later gives checkpoints a metric);
* GC (``gc.claim_checkpoints``: candidates leave; ``gc.record_batch``: DELETED and
  PARTIALLY_DELETED outcomes, bytes freed; ``gc.reconcile_errors``: candidates return);
* storage reconciliation (``storage.reconcile.actions``: a missing checkpoint marked
  DELETED, a drifted one's size re-synced);
* protect toggles (page, bulk action, API).

``services.create_experiment`` creates the row (zeros) with the experiment. An experiment
made otherwise has none until a read builds it from its checkpoints (``summary_of``,
``build_missing``); until then ``add`` finds no row and does nothing, so a row never starts
from a partial count. ``refresh`` is also the repair: the ``rebuild_summaries``
command and the migration's backfill run it.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, Count, F, Max, Min, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from ckptweb.lib.db import ByteSum
from experiments.choices import GC_CANDIDATE_STATES, CheckpointState
from experiments.models import Checkpoint, Experiment, ExperimentSummary

COUNTERS = ("live", "deleted", "live_bytes", "candidates", "candidate_bytes", "protected")
#: Counters of bytes: exact Decimals in the row (their sum may pass 2**63).
BYTE_COUNTERS = ("live_bytes", "candidate_bytes")


def _pk(experiment: Experiment | int) -> int:
    return experiment.pk if isinstance(experiment, Experiment) else experiment


def _aggregates(smaller_is_better: bool | None = None) -> dict:
    live = ~Q(state=CheckpointState.DELETED)
    candidate = Q(state__in=GC_CANDIDATE_STATES)
    aggregates = {
        "live": Count("id", filter=live),
        "deleted": Count("id", filter=Q(state=CheckpointState.DELETED)),
        "live_bytes": Coalesce(ByteSum("size_bytes", filter=live), 0),
        "candidates": Count("id", filter=candidate),
        "candidate_bytes": Coalesce(ByteSum("size_bytes", filter=candidate), 0),
        "protected": Count("id", filter=Q(protected=True)),
    }
    if smaller_is_better is None:  # both, for experiments of either direction
        return aggregates | {
            "smallest": Min("validation_metric"),
            "largest": Max("validation_metric"),
        }
    best = Min if smaller_is_better else Max
    return aggregates | {"best_metric": best("validation_metric")}


def bytes_of(checkpoints) -> int:
    """The total ``size_bytes`` of a queryset of checkpoints (one aggregate)."""
    return int(checkpoints.aggregate(total=Coalesce(ByteSum("size_bytes"), 0))["total"])


def candidate_totals(experiment: Experiment) -> dict:
    """``{"n", "size", "top"}``: the GC candidates' count and bytes (this summary's) and their
    largest id (one index probe), in one query; a missing row is built first."""
    top = Checkpoint.objects.filter(experiment_id=experiment.pk, state__in=GC_CANDIDATE_STATES)
    row = (
        ExperimentSummary.objects.filter(experiment_id=experiment.pk)
        .annotate(top=Subquery(top.order_by("-id").values("id")[:1]))
        .values_list("candidates", "candidate_bytes", "top")
        .first()
    )
    if row is None:
        built = refresh(experiment)
        row = (built.candidates, built.candidate_bytes, top.aggregate(top=Max("id"))["top"])
    n, size, top_id = row
    return {"n": n, "size": int(size), "top": top_id}


def created(experiment: Experiment) -> None:
    """The zero summary of a new experiment (the services create it with the experiment)."""
    ExperimentSummary.objects.create(experiment=experiment)


def computed(experiment: Experiment) -> dict:
    """The summary's fields recomputed from the checkpoints (one aggregate query)."""
    values = Checkpoint.objects.filter(experiment_id=experiment.pk).aggregate(
        **_aggregates(experiment.smaller_is_better)
    )
    for name in BYTE_COUNTERS:
        values[name] = int(values[name])  # SQLite's TOTAL is a float
    return values


def build_missing(experiments) -> dict[int, ExperimentSummary]:
    """Create the summary rows of ``experiments`` (which have none yet), in two queries.

    One grouped aggregate over their checkpoints and one INSERT (a row a concurrent
    reader created first is left as it is). Returns ``{experiment id: summary}``.
    """
    experiments = list(experiments)
    if not experiments:
        return {}
    rows = (
        Checkpoint.objects.filter(experiment_id__in=[e.pk for e in experiments])
        .order_by()
        .values("experiment_id")
        .annotate(**_aggregates())
    )
    found = {row.pop("experiment_id"): row for row in rows}
    built = {}
    for experiment in experiments:
        values = found.get(experiment.pk, {"smallest": None, "largest": None})
        smallest, largest = values.pop("smallest"), values.pop("largest")
        for name in BYTE_COUNTERS:
            values[name] = int(values.get(name) or 0)
        best = smallest if experiment.smaller_is_better else largest
        built[experiment.pk] = ExperimentSummary(
            experiment_id=experiment.pk, best_metric=best, **values
        )
    ExperimentSummary.objects.bulk_create(built.values(), ignore_conflicts=True)
    return built


def refresh(experiment: Experiment) -> ExperimentSummary:
    """Recompute ``experiment``'s summary from its checkpoints and store it."""
    values = computed(experiment)
    try:
        with transaction.atomic():
            summary, _ = ExperimentSummary.objects.update_or_create(
                experiment_id=experiment.pk, defaults=values
            )
    except IntegrityError:  # a concurrent refresh created it first
        ExperimentSummary.objects.filter(experiment_id=experiment.pk).update(**values)
        summary = ExperimentSummary(experiment_id=experiment.pk, **values)
    return summary


def summary_of(experiment: Experiment) -> ExperimentSummary:
    """The stored summary of ``experiment``, built by ``refresh`` when it has none yet."""
    summary = ExperimentSummary.objects.filter(experiment_id=experiment.pk).first()
    return summary if summary is not None else refresh(experiment)


def _improved(metric: float, smaller_is_better: bool):
    better = Q(best_metric__gt=metric) if smaller_is_better else Q(best_metric__lt=metric)
    return Case(
        When(Q(best_metric__isnull=True) | better, then=Value(metric)),
        default=F("best_metric"),
    )


def add(
    experiment: Experiment | int,
    *,
    metrics=(),
    smaller_is_better: bool = True,
    **deltas: int,
) -> None:
    """Apply counter ``deltas`` (``COUNTERS`` names) and offer ``metrics`` as the best.

    One UPDATE; nothing when the experiment has no summary row yet (its first read builds
    it). ``smaller_is_better`` is the experiment's direction, needed with ``metrics``.
    """
    for name in BYTE_COUNTERS:  # may pass 2**63 (SQLite takes no such int parameter)
        if deltas.get(name):
            deltas[name] = Decimal(deltas[name])
    changes = {name: F(name) + delta for name, delta in deltas.items() if delta}
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown summary counters: {sorted(unknown)}")
    measured = [m for m in metrics if m is not None]
    if measured:
        best = min(measured) if smaller_is_better else max(measured)
        changes["best_metric"] = _improved(best, smaller_is_better)
    if changes:
        ExperimentSummary.objects.filter(experiment_id=_pk(experiment)).update(**changes)


def added_checkpoints(experiment: Experiment, checkpoints) -> None:
    """Count newly inserted ``checkpoints`` of ``experiment`` (one UPDATE)."""
    checkpoints = list(checkpoints)
    live = [c for c in checkpoints if c.state != CheckpointState.DELETED]
    candidates = [c for c in checkpoints if c.state in GC_CANDIDATE_STATES]
    add(
        experiment,
        live=len(live),
        deleted=len(checkpoints) - len(live),
        live_bytes=sum(c.size_bytes for c in live),
        candidates=len(candidates),
        candidate_bytes=sum(c.size_bytes for c in candidates),
        protected=sum(bool(c.protected) for c in checkpoints),
        metrics=[c.validation_metric for c in checkpoints],
        smaller_is_better=experiment.smaller_is_better,
    )


def metrics_linked(experiment: Experiment, metrics) -> None:
    """Checkpoints of ``experiment`` were given ``metrics`` by a validation reported later."""
    add(experiment, metrics=metrics, smaller_is_better=experiment.smaller_is_better)


def protection_changed(experiment: Experiment | int, changed: int, protected: bool) -> None:
    """``changed`` checkpoints of ``experiment`` became protected (or unprotected)."""
    add(experiment, protected=changed if protected else -changed)
