"""The rows a metric chart draws, bounded by the database rather than by Python.

``validation_lines`` and ``chart_checkpoints`` fetch at most about ``MAX_POINTS``
validations and ``MAX_MARKERS`` checkpoints whatever the size of the experiment — every row
when there are few, otherwise a sample chosen in SQL that never reads every row.

The sample (``spread``) is ``n`` index probes evenly spaced over the id range of the rows:
a recursive CTE counts ``i = 0 … n-1`` and each probe takes the first row with
``id >= lo + (hi - lo) * i / n`` (``ORDER BY id LIMIT 1`` on an index led by the filter's
columns, e.g. ``ckpt_candidate_id_idx``), so it costs ``n`` index lookups at 1k or 1M rows.
Ids grow with report time, so the points are spread evenly over the experiment's history
(a reporting burst gets fewer points than its share of rows — the price of not counting).
Decided instead of ``MOD(id, k) = 0`` (which reads every candidate to test it) or a
per-trial cap (which still needs a count per trial). The lines add each trial's first and
last validation (one probe each) so every trial keeps a line spanning its steps; the
markers add the retained checkpoints by id (up to ``MAX_KEPT_MARKERS``) so kept ones stay
visible however few they are — every one when the page knows the whole retained set (the
GC page), else those of the sampled trials and the experiment's best — and every marker's
verdict is exact (``retention.Verdicts`` asks about each marker's trial).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTransform

from experiments.gc.retention import Verdicts
from experiments.models import Validation

#: The chart is about 900 px wide: 1,000 line points and 1,000 markers are more than it
#: can tell apart, and keep the page's SVG near 400 KB at any size (2,000 of each doubled
#: it and the time to build it, issue 17).
MAX_POINTS = 1000
MAX_MARKERS = 1000
#: At most this many retained checkpoints are named in the marker query (an ``IN`` list;
#: SQLite allows 999 parameters); the rest of the markers are a sample of all candidates.
MAX_KEPT_MARKERS = 400
#: At most this many trials (the latest) get their first and last validation added to a
#: sampled chart; past it, lines are the spread sample only (a legend shows 12 anyway).
MAX_LINE_TRIALS = 250


def _compiled(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return f"({sql})", tuple(params)


def spread(rows: QuerySet, n: int, *also: QuerySet, trials: QuerySet | None = None) -> RawSQL:
    """Ids of about ``n`` of ``rows`` evenly spaced by id, by ``n`` index probes (see above).

    For ``id__in=``; the duplicates of probes that land on the same row are harmless there.
    ``also`` are querysets of more ids (one column), joined by UNION ALL: one ``IN`` rather
    than an OR of several, which PostgreSQL can only answer by filtering every row.
    ``trials``: ``rows`` are validations of these trials; the id range is then from the
    first validation of the first trial to the last of the latest trial (two probes of
    ``validation_trial_id_idx``): validations carry no experiment, and walking the id index
    from either end would read other experiments' rows. Validations of older trials past
    that range are left to the trials' last points.
    """
    ids = rows.order_by().values("id")
    if trials is None:
        lo, lo_params = _compiled(ids.order_by("id")[:1])
        hi, hi_params = _compiled(ids.order_by("-id")[:1])
    else:
        ends = []
        for order in ("id", "-id"):
            trial = Subquery(trials.order_by(order).values("id")[:1])
            of_trial = Validation.objects.filter(trial=trial).order_by(order).values("id")
            ends.append(_compiled(of_trial[:1]))
        (lo, lo_params), (hi, hi_params) = ends
    step = RawSQL("b.lo + (b.hi - b.lo) * p.i / %s", (max(n, 1),))
    probe, probe_params = _compiled(ids.filter(id__gte=step).order_by("id")[:1])
    sql = (
        "WITH RECURSIVE p(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM p WHERE i < %s),"
        f" b(lo, hi) AS (SELECT {lo}, {hi}) SELECT {probe} FROM p, b"
    )
    params = (max(n, 1) - 1, *lo_params, *hi_params, *probe_params)
    for queryset in also:
        more, more_params = _compiled(queryset)
        sql += f" UNION ALL SELECT * FROM {more} more"
        params += more_params
    return RawSQL(sql, params)  # noqa: S611 - compiled querysets, every value a parameter


@dataclass(frozen=True)
class ChartCheckpoint:
    """What the chart needs of a checkpoint: where it goes and whether it is kept."""

    id: int
    trial_id: int
    steps_completed: int
    validation_metric: float | None
    keep: bool | None  # None: not a GC candidate (already deleted, deleting, error)
    report_time: float | None = None  # POSIX seconds, for the time axis


@dataclass
class Lines:
    """``{trial_id: [(x, metric), …]}`` and whether the database sampled the rows.

    ``x`` is steps, or POSIX seconds of the report on the time axis; ``by_steps`` gives
    each trial's value at a step, to place checkpoints on a metric other than the searcher's.
    """

    points: dict[int, list[tuple[float, float]]]
    sampled: bool = False
    by_steps: dict[int, dict[int, float]] = field(default_factory=dict)


def validation_lines(
    metric_name: str,
    validations: QuerySet,
    trials: QuerySet,
    count: int | None = None,
    max_points: int = MAX_POINTS,
    x_axis: str = "steps",
) -> Lines:
    """The metric of ``validations`` per trial, at most about ``max_points`` rows.

    ``validations`` are Validation rows, or one trial's rows of another metrics group
    (``TrialMetrics``, the same columns).

    ``trials`` are the trials those validations belong to and ``count`` the number of
    validations if the caller knows it (else a COUNT bounded at ``max_points + 1`` rows).
    With at most ``max_points`` validations every one is read and the latest at a step wins.
    With more, the database returns ``max_points / 2`` rows spread by id (``spread``) plus
    each trial's first and last validation by steps (one index probe per trial, for the
    latest ``MAX_LINE_TRIALS`` trials), so those trials keep a line spanning their steps;
    that is at most ``max_points / 2 + 2 × MAX_LINE_TRIALS`` rows. Two queries when
    ``count`` is not given, one otherwise. Values that are not finite numbers are skipped.
    """
    if count is None:
        count = validations.order_by()[: max_points + 1].count()
    rows = validations.annotate(value=KeyTransform(metric_name, "metrics"))
    sampled = count > max_points
    if sampled:
        of_trial = Validation.objects.filter(trial=OuterRef("pk")).values("id")
        ranged = trials
        if validations.model is not Validation:
            # Another metrics group's rows (``TrialMetrics``): their own ends, and an id range
            # over the rows themselves (``spread(trials=)`` reads validations' ids).
            of_trial = validations.filter(trial=OuterRef("pk")).order_by().values("id")
            ranged = None
        lined = trials.order_by("-id")[:MAX_LINE_TRIALS]
        first = lined.values(v=Subquery(of_trial.order_by("steps_completed", "-id")[:1]))
        last = lined.values(v=Subquery(of_trial.order_by("-steps_completed", "-id")[:1]))
        probes = spread(validations, max_points // 2, first, last, trials=ranged)
        rows = rows.filter(id__in=probes)
    lines: dict[int, dict[int, float]] = {}
    times: dict[tuple[int, int], float] = {}
    for trial_id, steps, value, reported in rows.order_by(
        "trial_id", "steps_completed", "id"
    ).values_list("trial_id", "steps_completed", "value", "report_time"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        lines.setdefault(trial_id, {})[steps] = float(value)
        times[(trial_id, steps)] = reported.timestamp()
    if x_axis == "time":
        points = {
            t: sorted((times[(t, steps)], v) for steps, v in p.items()) for t, p in lines.items()
        }
    else:
        points = {trial_id: sorted(p.items()) for trial_id, p in lines.items()}
    return Lines(points, sampled, lines)


@dataclass
class Markers:
    """The checkpoints to mark on a chart and whether the database sampled them."""

    checkpoints: list[ChartCheckpoint]
    sampled: bool = False


def _named(kept_ids, limit: int) -> list[int]:
    """At most ``limit`` of ``kept_ids``, evenly spread by id."""
    named = sorted(kept_ids)
    if len(named) > limit:
        step = len(named) / limit
        named = [named[int(i * step)] for i in range(limit)]
    return named


def chart_checkpoints(
    candidates: QuerySet,
    verdicts: Verdicts,
    count: int,
    max_markers: int = MAX_MARKERS,
    trial_id: int | None = None,
) -> Markers:
    """At most about ``max_markers`` of the GC ``candidates``, with their verdicts.

    ``verdicts`` is the policy's retained set (``retention.Verdicts``) and ``count`` the
    number of candidates (the summary's; an upper bound will do); ``trial_id``: they are
    that trial's (the experiment's best of other trials is not drawn). With at most
    ``max_markers`` candidates every one is read (one query). With more, the budget is
    spread over all candidates by index probes (``spread``) and the retained ones join them
    (up to ``MAX_KEPT_MARKERS``, evenly spread by id) so kept ones stay visible: when the
    whole retained set is known, in the same query; otherwise the sample's trials are asked
    about (``Verdicts.want``: one query, which also returns their kept rows).
    """
    rows = candidates.order_by("id")
    columns = ("id", *Verdicts.SHOWN_COLUMNS)
    sampled = count > max_markers
    if not sampled:
        found = list(rows.values_list(*columns))
        verdicts.want(row[1] for row in found)
    elif verdicts.known is not None:
        named = _named(verdicts.known, MAX_KEPT_MARKERS)
        named_ids = candidates.filter(id__in=named).order_by().values("id")
        probes = spread(candidates, max(max_markers - len(named), 1), named_ids)
        found = list(rows.filter(id__in=probes).values_list(*columns))
    else:
        probes = spread(candidates, max(max_markers - MAX_KEPT_MARKERS, 1))
        found = list(rows.filter(id__in=probes).values_list(*columns))
        verdicts.want(row[1] for row in found)
        verdicts.kept  # noqa: B018 - one query: the verdicts and rows of the sample's trials
        sampled_ids = {row[0] for row in found}
        of_chart = [pk for pk, row in verdicts.shown.items() if trial_id in (None, row[1])]
        named = [pk for pk in _named(of_chart, MAX_KEPT_MARKERS) if pk not in sampled_ids]
        found = sorted(found + [verdicts.shown[pk] for pk in named])
    kept = verdicts.kept
    markers = [
        ChartCheckpoint(pk, trial, steps, metric, pk in kept, reported.timestamp())
        for pk, trial, steps, metric, reported in found
    ]
    return Markers(markers, sampled)
