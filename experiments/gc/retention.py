"""Which checkpoints a GC policy keeps, computed by the database.

One query ranks an experiment's candidate checkpoints (COMPLETED or PARTIALLY_DELETED)
three ways with window functions — best over the experiment, best within the trial, latest
within the trial — and a checkpoint is kept when any rank is within the policy, or it is
protected, or it is registered (a ModelVersion pins it; see ``experiments.registry``). The
registered set is a subquery of the same query, so a policy can never outvote it. The rules
are docs/architecture.md "Retention":

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

A page that shows a bounded number of checkpoints asks only about their trials
(``retained(…, trials=…)``, or ``Verdicts`` for several parts of one page): the per-trial
ranks of a trial depend on that trial's checkpoints alone, so the answer for those trials'
checkpoints is exact, and it costs one probe per asked trial instead of one per trial of
the experiment (10k trials at 1M checkpoints: ~100 ms).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connections
from django.db.models import F, Q, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber

from ckptweb.lib.policy import Policy
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


#: What the retained set carries of a kept checkpoint by default: {id: size_bytes}.
KEPT_COLUMNS = ("id", "size_bytes")


def _top(queryset, order_by, limit: int, per_trial: bool, columns=KEPT_COLUMNS):
    """``columns`` of the first ``limit`` rows by ``order_by``, overall or per trial."""
    window = Window(
        RowNumber(), partition_by=[F("trial_id")] if per_trial else None, order_by=order_by
    )
    return queryset.annotate(rank=window).filter(rank__lte=limit).order_by().values_list(*columns)


def retained_query(
    experiment: Experiment,
    policy: Policy,
    trials: list[int] | None = None,
    columns: tuple[str, ...] = KEPT_COLUMNS,
):
    """One query (a UNION of windowed selects) of the (id, size_bytes) that ``policy`` keeps.

    Each part ranks with a single ROW_NUMBER() window whose order matches a partial index
    (see Checkpoint.Meta.indexes), so PostgreSQL reads it in index order without sorting
    and stops early where it can. Parts whose number is 0 are left out. With ``trials``,
    only their checkpoints and the experiment's best (see the module docstring); the rows
    are ``columns`` of the kept checkpoints.
    """
    base = candidates(experiment)
    of_trials = base if trials is None else base.filter(trial_id__in=trials)
    with_metric = base.filter(validation_metric__isnull=False)
    best = _best_order(experiment)
    parts = [of_trials.filter(pinned()).order_by().values_list(*columns)]
    if policy.save_experiment_best:
        parts.append(_top(with_metric, best, policy.save_experiment_best, False, columns))
    if policy.save_trial_best:
        with_metric_of_trials = of_trials.filter(validation_metric__isnull=False)
        parts.append(_top(with_metric_of_trials, best, policy.save_trial_best, True, columns))
    if policy.save_trial_latest:
        parts.append(_top(of_trials, LATEST_ORDER, policy.save_trial_latest, True, columns))
    first, *rest = parts
    return first.union(*rest) if rest else first


def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return f"({sql})", tuple(params)


def _per_trial_sql(
    experiment: Experiment, queryset, limit: int, trials: list[int] | None, columns
) -> tuple[str, tuple]:
    """``columns`` of the first ``limit`` rows of ordered ``queryset`` per trial.

    ``trials t CROSS JOIN LATERAL (queryset of trial t LIMIT limit)``, over the trials of
    ``experiment`` or, given ``trials``, those of them.
    """
    of_trial = queryset.filter(trial_id=RawSQL('t."id"', ()))
    inner, params = _sql(of_trial.values_list(*columns)[:limit])
    selected = ", ".join(f'k."{column}"' for column in columns)  # field names, not input
    sql = (
        f'(SELECT {selected} FROM "{Trial._meta.db_table}" t'
        f' CROSS JOIN LATERAL {inner} k WHERE t."experiment_id" = %s'
    )
    params = (*params, experiment.pk)
    if trials is not None:
        sql += ' AND t."id" = ANY(%s)'
        params += (list(trials),)
    return sql + ")", params


def _retained_lateral(
    experiment: Experiment, policy: Policy, connection, trials: list[int] | None, columns
) -> list[tuple]:
    """``retained`` on PostgreSQL: the per-trial parts by LATERAL, no window (see above)."""
    base = candidates(experiment)
    with_metric = base.filter(validation_metric__isnull=False)
    best = _best_order(experiment)
    of_trials = base if trials is None else base.filter(trial_id__in=trials)
    # ``pinned()`` as two parts: its OR of a flag and a subquery is a sequential scan.
    registered = Q(pk__in=ModelVersion.objects.values("checkpoint_id"))
    parts = [
        _sql(of_trials.filter(pinning).order_by().values_list(*columns))
        for pinning in (Q(protected=True), registered)
    ]
    if policy.save_experiment_best:
        top = with_metric.order_by(*best).values_list(*columns)
        parts.append(_sql(top[: policy.save_experiment_best]))
    if policy.save_trial_best:
        parts.append(
            _per_trial_sql(
                experiment, with_metric.order_by(*best), policy.save_trial_best, trials, columns
            )
        )
    if policy.save_trial_latest:
        parts.append(
            _per_trial_sql(
                experiment, base.order_by(*LATEST_ORDER), policy.save_trial_latest, trials, columns
            )
        )
    sql = " UNION ".join(part for part, _ in parts)
    params = tuple(p for _, part_params in parts for p in part_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def retained_rows(
    experiment: Experiment,
    policy: Policy,
    trials: Iterable[int] | None = None,
    columns: tuple[str, ...] = KEPT_COLUMNS,
) -> list[tuple]:
    """``columns`` of the candidates ``policy`` keeps (one query; none for no trials).

    The LATERAL form on PostgreSQL, the window form (``retained_query``) elsewhere. With
    ``trials`` (ids), only their kept checkpoints and the experiment's best: exact for the
    checkpoints of those trials, the rest unknown (see the module docstring).
    """
    if trials is not None:
        trials = sorted(set(trials))
        if not trials:
            return []
    connection = connections[Checkpoint.objects.db]
    if connection.vendor == "postgresql":
        return _retained_lateral(experiment, policy, connection, trials, columns)
    return list(retained_query(experiment, policy, trials, columns))


def retained(
    experiment: Experiment, policy: Policy, trials: Iterable[int] | None = None
) -> dict[int, int]:
    """{id: size_bytes} of the candidates ``policy`` keeps (``retained_rows``)."""
    return dict(retained_rows(experiment, policy, trials))


@dataclass
class Verdicts:
    """The retained set of ``policy`` for the trials a page asks about, in one query.

    Parts of a page ``want`` the trials of the checkpoints they show; the first read of
    ``kept`` runs ``retained_rows`` for them, and a later read only for trials wanted since.
    ``shown`` holds the ``SHOWN_COLUMNS`` of each kept checkpoint read, so a chart can draw
    kept ones without another query. ``known`` given: the whole retained set, already
    computed (nothing more is queried; ``shown`` stays empty).
    """

    SHOWN_COLUMNS = ("trial_id", "steps_completed", "validation_metric", "report_time")

    experiment: Experiment
    policy: Policy
    known: dict[int, int] | None = None
    shown: dict[int, tuple] = field(default_factory=dict)
    _kept: dict[int, int] = field(default_factory=dict)
    _wanted: set[int] = field(default_factory=set)
    _asked: set[int] = field(default_factory=set)

    def want(self, trial_ids: Iterable[int]) -> None:
        self._wanted.update(trial_ids)

    @property
    def kept(self) -> dict[int, int]:
        """{id: size_bytes} of the kept checkpoints of the wanted trials (and more)."""
        if self.known is not None:
            return self.known
        new = self._wanted - self._asked
        if new:
            columns = (*KEPT_COLUMNS, *self.SHOWN_COLUMNS)
            for pk, size, *shown in retained_rows(self.experiment, self.policy, new, columns):
                self._kept[pk] = size
                self.shown[pk] = (pk, *shown)
            self._asked |= new
        return self._kept


def ranked_candidates(experiment: Experiment, policy: Policy) -> list[RankedCheckpoint]:
    """Every GC candidate of ``experiment`` with ``keep`` set by ``policy``, ids descending.

    Two queries: the retained set (``retained_query``) and the list of candidates.
    """
    kept = retained(experiment, policy)
    rows = candidates(experiment).order_by("-id").values_list(*CANDIDATE_COLUMNS)
    return [RankedCheckpoint.from_row(row, kept) for row in rows]
