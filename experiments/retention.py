"""Which checkpoints a GC policy keeps, computed by the database.

One query ranks an experiment's candidate checkpoints (COMPLETED or PARTIALLY_DELETED)
three ways with window functions — best over the experiment, best within the trial, latest
within the trial — and a checkpoint is kept when any rank is within the policy, or it is
protected, or it is registered (a ModelVersion pins it; see ``experiments.registry``). The
registered set is a subquery of the same query, so a policy can never outvote it. The rules
are DESIGN.md "Retention (GC) semantics":

* "best" orders by the validation metric (ascending when ``smaller_is_better``, else
  descending), ties to the smaller ``steps_completed``, then the smaller id; checkpoints
  without a metric are never "best";
* "latest" orders by ``steps_completed`` descending, then id descending.

Runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from ckptweb.policy import Policy
from experiments.choices import GC_CANDIDATE_STATES
from experiments.models import Checkpoint, Experiment, ModelVersion


@dataclass(frozen=True)
class RankedCheckpoint:
    """A candidate checkpoint with the verdict of a policy."""

    id: int
    uuid: str
    trial_id: int
    steps_completed: int
    validation_metric: float | None
    size_bytes: int
    protected: bool
    keep: bool

    @classmethod
    def from_row(cls, row: tuple, kept, **extra):
        """One from a ``CANDIDATE_COLUMNS`` row; kept when its id is in ``kept``."""
        pk, uuid, *rest = row
        return cls(pk, str(uuid), *rest, pk in kept, **extra)


#: The columns of a candidate that previews and ``RankedCheckpoint`` carry, in this order.
CANDIDATE_COLUMNS = (
    "id",
    "uuid",
    "trial_id",
    "steps_completed",
    "validation_metric",
    "size_bytes",
    "protected",
)


def _best_order(experiment: Experiment) -> list:
    metric = F("validation_metric")
    first = metric.asc() if experiment.smaller_is_better else metric.desc()
    return [first, F("steps_completed").asc(), F("id").asc()]


LATEST_ORDER = [F("steps_completed").desc(), F("id").desc()]


def candidates(experiment: Experiment):
    """The GC candidates of ``experiment``: COMPLETED or PARTIALLY_DELETED checkpoints."""
    return Checkpoint.objects.filter(experiment=experiment, state__in=GC_CANDIDATE_STATES)


def pinned() -> Q:
    """Checkpoints no policy may delete: protected, or registered as a model version."""
    return Q(protected=True) | Q(pk__in=ModelVersion.objects.values("checkpoint_id"))


def _top(queryset, order_by, limit: int, per_trial: bool):
    """(id, size_bytes) of the first ``limit`` rows by ``order_by``, overall or per trial."""
    window = Window(
        RowNumber(), partition_by=[F("trial_id")] if per_trial else None, order_by=order_by
    )
    return (
        queryset.annotate(rank=window)
        .filter(rank__lte=limit)
        .order_by()
        .values_list("id", "size_bytes")
    )


def retained_query(experiment: Experiment, policy: Policy):
    """One query (a UNION of windowed selects) of the (id, size_bytes) that ``policy`` keeps.

    Each part ranks with a single ROW_NUMBER() window whose order matches a partial index
    (see Checkpoint.Meta.indexes), so PostgreSQL reads it in index order without sorting
    and stops early where it can. Parts whose number is 0 are left out.
    """
    base = candidates(experiment)
    with_metric = base.filter(validation_metric__isnull=False)
    best = _best_order(experiment)
    parts = [base.filter(pinned()).order_by().values_list("id", "size_bytes")]
    if policy.save_experiment_best:
        parts.append(_top(with_metric, best, policy.save_experiment_best, per_trial=False))
    if policy.save_trial_best:
        parts.append(_top(with_metric, best, policy.save_trial_best, per_trial=True))
    if policy.save_trial_latest:
        parts.append(_top(base, LATEST_ORDER, policy.save_trial_latest, per_trial=True))
    first, *rest = parts
    return first.union(*rest) if rest else first


def retained(experiment: Experiment, policy: Policy) -> dict[int, int]:
    """{id: size_bytes} of the candidates ``policy`` keeps (one query)."""
    return dict(retained_query(experiment, policy))


def ranked_candidates(experiment: Experiment, policy: Policy) -> list[RankedCheckpoint]:
    """Every GC candidate of ``experiment`` with ``keep`` set by ``policy``, ids descending.

    Two queries: the retained set (``retained_query``) and the list of candidates.
    """
    kept = retained(experiment, policy)
    rows = candidates(experiment).order_by("-id").values_list(*CANDIDATE_COLUMNS)
    return [RankedCheckpoint.from_row(row, kept) for row in rows]
