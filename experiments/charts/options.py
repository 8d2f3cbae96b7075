"""The controls of the pages' metric charts: ``?metric=&x=&scale=``.

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
SCALES = ("linear", "log")


@dataclass(frozen=True)
class ChartOptions:
    """What the chart draws: which metric, against what, on which scale."""

    metric: str
    searcher_metric: str
    x_axis: str = "steps"
    scale: str = "linear"
    metrics: tuple[str, ...] = ()

    @property
    def searcher(self) -> bool:
        return self.metric == self.searcher_metric

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


def chart_options(params, searcher_metric: str, validations: QuerySet) -> ChartOptions:
    """The options of this request (``params`` is ``request.GET``)."""
    metrics = reported_metrics(validations, searcher_metric)
    metric = params.get("metric") or searcher_metric
    if metric not in metrics:
        metric = searcher_metric
    x_axis = params.get("x") if params.get("x") in X_AXES else "steps"
    scale = params.get("scale") if params.get("scale") in SCALES else "linear"
    return ChartOptions(metric, searcher_metric, x_axis, scale, metrics)
