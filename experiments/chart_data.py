"""The rows a metric chart draws, bounded by the database rather than by Python.

``validation_lines`` and ``chart_checkpoints`` fetch at most about ``MAX_POINTS``
validations and ``MAX_MARKERS`` checkpoints whatever the size of the experiment — every row
when there are few, otherwise a sample chosen in SQL (``MOD(id, k) = 0`` with ``k`` from a
COUNT, plus each trial's first and last validation so every trial keeps its line, and the
checkpoints the policy keeps). ``experiments.charts.metric_chart`` lays them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Mod

from experiments.models import Validation

MAX_POINTS = 2000
MAX_MARKERS = 2000
#: At most this many retained checkpoints are named in the marker query (an ``IN`` list;
#: SQLite allows 999 parameters); the rest of the markers are a sample of all candidates.
MAX_KEPT_MARKERS = 800


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
    """The searcher metric of ``validations`` per trial, at most about ``max_points`` rows.

    ``trials`` are the trials those validations belong to and ``count`` the number of
    validations if the caller knows it (else one COUNT query). With at most ``max_points``
    validations every one is read and the latest at a step wins. With more, the database
    returns every ``k``-th row by id (``k`` from the count) plus each trial's first and last
    validation by steps (one index probe per trial), so every trial keeps a line spanning
    its steps; that is at most ``max_points / 2 + 2 × trials`` rows. Two queries when
    ``count`` is not given, one otherwise. Values that are not finite numbers are skipped.
    """
    if count is None:
        count = validations.count()
    rows = validations.annotate(value=KeyTransform(metric_name, "metrics"))
    sampled = count > max_points
    if sampled:
        k = -(-count // max(max_points // 2, 1))
        of_trial = Validation.objects.filter(trial=OuterRef("pk")).values("id")
        first = trials.order_by().values(
            v=Subquery(of_trial.order_by("steps_completed", "-id")[:1])
        )
        last = trials.order_by().values(
            v=Subquery(of_trial.order_by("-steps_completed", "-id")[:1])
        )
        rows = rows.annotate(bucket=Mod("id", k)).filter(
            Q(bucket=0) | Q(id__in=first) | Q(id__in=last)
        )
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


def chart_checkpoints(
    candidates: QuerySet,
    kept: dict[int, int] | set[int],
    count: int,
    max_markers: int = MAX_MARKERS,
) -> Markers:
    """At most about ``max_markers`` of the GC ``candidates``, with their verdicts, in one query.

    ``kept`` is the retained set of the policy (``retention.retained``) and ``count`` the
    number of candidates (an upper bound will do). With at most ``max_markers`` candidates
    every one is read. With more, the retained ones (up to ``MAX_KEPT_MARKERS`` of them,
    evenly spread by id) and every ``k``-th candidate by id make up the markers, so kept
    checkpoints stay visible however few they are.
    """
    rows = candidates.order_by("id")
    sampled = count > max_markers
    if sampled:
        named = sorted(kept)
        if len(named) > MAX_KEPT_MARKERS:
            step = len(named) / MAX_KEPT_MARKERS
            named = [named[int(i * step)] for i in range(MAX_KEPT_MARKERS)]
        k = -(-count // max(max_markers - len(named), 1))
        rows = rows.annotate(bucket=Mod("id", k)).filter(Q(bucket=0) | Q(id__in=named))
    markers = [
        ChartCheckpoint(pk, trial_id, steps, metric, pk in kept, reported.timestamp())
        for pk, trial_id, steps, metric, reported in rows.values_list(
            "id", "trial_id", "steps_completed", "validation_metric", "report_time"
        )
    ]
    return Markers(markers, sampled)
