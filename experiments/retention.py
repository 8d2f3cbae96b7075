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

On SQLite ``retained_query`` (a UNION of ROW_NUMBER() windows) is the query. On PostgreSQL a
window is computed over every row of its partition before the rank filter applies, so the
per-trial parts read every candidate (a full scan at 1M checkpoints). There ``retained``
runs the same UNION with each per-trial part as ``trials CROSS JOIN LATERAL (… ORDER BY …
LIMIT k)``: one index probe per trial on the partial index of that order, k rows each, and
the experiment-best part as ``ORDER BY … LIMIT k`` on its own index. Same result (the
retention tests run on both databases).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.db.models import F, Q, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber

from ckptweb.policy import Policy
from experiments.choices import GC_CANDIDATE_STATES
from experiments.models import Checkpoint, Experiment, ModelVersion, Trial


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


def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return f"({sql})", tuple(params)


def _per_trial_sql(experiment: Experiment, queryset, limit: int) -> tuple[str, tuple]:
    """(id, size_bytes) of the first ``limit`` rows of ordered ``queryset`` per trial.

    ``trials t CROSS JOIN LATERAL (queryset of trial t LIMIT limit)``.
    """
    of_trial = queryset.filter(trial_id=RawSQL('t."id"', ()))
    inner, params = _sql(of_trial.values_list("id", "size_bytes")[:limit])
    sql = (
        f'(SELECT k."id", k."size_bytes" FROM "{Trial._meta.db_table}" t'
        f' CROSS JOIN LATERAL {inner} k WHERE t."experiment_id" = %s)'
    )
    return sql, (*params, experiment.pk)


def _retained_lateral(experiment: Experiment, policy: Policy, connection) -> dict[int, int]:
    """``retained`` on PostgreSQL: the per-trial parts by LATERAL, no window (see above)."""
    base = candidates(experiment)
    with_metric = base.filter(validation_metric__isnull=False)
    best = _best_order(experiment)
    # ``pinned()`` as two parts: its OR of a flag and a subquery is a sequential scan.
    registered = Q(pk__in=ModelVersion.objects.values("checkpoint_id"))
    parts = [
        _sql(base.filter(pinning).order_by().values_list("id", "size_bytes"))
        for pinning in (Q(protected=True), registered)
    ]
    if policy.save_experiment_best:
        top = with_metric.order_by(*best).values_list("id", "size_bytes")
        parts.append(_sql(top[: policy.save_experiment_best]))
    if policy.save_trial_best:
        parts.append(
            _per_trial_sql(experiment, with_metric.order_by(*best), policy.save_trial_best)
        )
    if policy.save_trial_latest:
        parts.append(
            _per_trial_sql(experiment, base.order_by(*LATEST_ORDER), policy.save_trial_latest)
        )
    sql = " UNION ".join(part for part, _ in parts)
    params = tuple(p for _, part_params in parts for p in part_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def retained(experiment: Experiment, policy: Policy) -> dict[int, int]:
    """{id: size_bytes} of the candidates ``policy`` keeps (one query).

    The LATERAL form on PostgreSQL, the window form (``retained_query``) elsewhere.
    """
    connection = connections[Checkpoint.objects.db]
    if connection.vendor == "postgresql":
        return _retained_lateral(experiment, policy, connection)
    return dict(retained_query(experiment, policy))


def ranked_candidates(experiment: Experiment, policy: Policy) -> list[RankedCheckpoint]:
    """Every GC candidate of ``experiment`` with ``keep`` set by ``policy``, ids descending.

    Two queries: the retained set (``retained_query``) and the list of candidates.
    """
    kept = retained(experiment, policy)
    rows = candidates(experiment).order_by("-id").values_list(*CANDIDATE_COLUMNS)
    return [RankedCheckpoint.from_row(row, kept) for row in rows]
