"""The controls of the pages' metric charts: ``?group=&metric=&x=&scale=``.

``group`` (the trial page) is ``validation`` or another metrics group the trial reported
(``training``, …; DESIGN.md "Metrics groups"), whose metric names are then offered instead.

``metric`` is any metric name the trials reported (default: the searcher metric), ``x`` is
``steps`` or ``time``, ``scale`` is ``linear`` or ``log``. Unknown values fall back to the
defaults, so a hand-edited URL never breaks the page. The metric names offered are the keys
of a bounded sample of the latest validations (``METRIC_SAMPLE`` rows, one query), which
is enough to list what training reports without scanning every validation.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

METRIC_SAMPLE = 200
#: The metric names offered come from the validations of this many latest trials.
METRIC_TRIALS = 10
MAX_METRICS = 50
X_AXES = ("steps", "time")
#: The group of validations (``experiments.services.VALIDATION_GROUP``).
VALIDATION = "validation"
#: At most this many groups are offered.
MAX_GROUPS = 20
SCALES = ("linear", "log")


@dataclass(frozen=True)
class ChartOptions:
    """What the chart draws: which metric, against what, on which scale."""

    metric: str
    searcher_metric: str
    x_axis: str = "steps"
    scale: str = "linear"
    metrics: tuple[str, ...] = ()
    group: str = VALIDATION
    groups: tuple[str, ...] = ()

    @property
    def searcher(self) -> bool:
        return self.group == VALIDATION and self.metric == self.searcher_metric

    @property
    def log(self) -> bool:
        return self.scale == "log"


def reported_metrics(validations: QuerySet, searcher_metric: str) -> tuple[str, ...]:
    """The metric names in the latest validations, the searcher metric first."""
    names = set()
    for metrics in validations.order_by("-id").values_list("metrics", flat=True)[:METRIC_SAMPLE]:
        if isinstance(metrics, dict):
            names.update(k for k, v in metrics.items() if isinstance(v, int | float))
    names.discard(searcher_metric)
    return (searcher_metric, *sorted(names)[: MAX_METRICS - 1])


def reported_groups(rows: QuerySet) -> tuple[str, ...]:
    """``validation``, then the other groups of ``rows`` (a trial's ``TrialMetrics``).

    One index probe per group (the next name after the last, on ``metrics_step_idx``)
    rather than a DISTINCT, which would read every report of a trial that logged a
    million steps.
    """
    names: list[str] = []
    while len(names) < MAX_GROUPS:
        after = rows.filter(group__gt=names[-1]) if names else rows
        name = after.order_by("group").values_list("group", flat=True).first()
        if name is None:
            break
        names.append(name)
    return (VALIDATION, *names)


def chart_options(
    params,
    searcher_metric: str,
    validations: QuerySet,
    groups: tuple[str, ...] = (),
    group_rows=None,
) -> ChartOptions:
    """The options of this request (``params`` is ``request.GET``).

    ``groups`` are the groups offered and ``group_rows(group)`` that group's rows; without
    them (or for ``validation``) the validations are charted.
    """
    group = params.get("group") if params.get("group") in groups else VALIDATION
    if group == VALIDATION:
        metrics = reported_metrics(validations, searcher_metric)
    else:
        metrics = reported_metrics(group_rows(group), "")[1:]
    default = searcher_metric if group == VALIDATION else (metrics or ("",))[0]
    metric = params.get("metric") or default
    if metric not in metrics:
        metric = default
    x_axis = params.get("x") if params.get("x") in X_AXES else "steps"
    scale = params.get("scale") if params.get("scale") in SCALES else "linear"
    return ChartOptions(metric, searcher_metric, x_axis, scale, metrics, group, groups)
