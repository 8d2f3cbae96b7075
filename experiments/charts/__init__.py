"""The metric charts the pages draw: ``page_chart`` (an experiment or a trial, with the
retention verdicts as markers) and ``comparison_chart`` (the compare page).

Each is a few bounded queries: ``data`` samples the validation lines and the checkpoint
markers in SQL (so a chart costs the same at a thousand validations and at a million),
``axes`` places and labels them, ``svg`` draws the server-rendered SVG, and ``options``
reads the controls (``?metric=&x=&scale=``).
"""

from __future__ import annotations

from experiments.charts.data import ChartCheckpoint, chart_checkpoints, validation_lines
from experiments.charts.options import (
    METRIC_TRIALS,
    VALIDATION,
    ChartOptions,
    chart_options,
    reported_groups,
)
from experiments.charts.svg import metric_chart
from experiments.gc.retention import Verdicts, candidates
from experiments.models import Checkpoint, Experiment, Trial, TrialMetrics, Validation
from experiments.services import latest_at_step


def page_chart(
    experiment: Experiment,
    verdicts: Verdicts,
    n_candidates: int,
    trial: Trial | None = None,
    n_validations: int | None = None,
    params=None,
):
    """The metric chart of an experiment (or one trial): at most five queries.

    ``verdicts`` (``retention.Verdicts``) give the markers' kept or deleted; ``n_candidates``
    is the number of GC candidates charted (an upper bound will do) and ``n_validations``
    the number of validations if known; both size the SQL samples.
    ``params`` (``request.GET``) choose the metric, x axis and scale (``chart_options``),
    and on a trial's chart the metrics group (validations, or ``training``, …): the lines
    are then that group's reports and the markers sit on them at their steps.
    """
    if trial is None:
        trials = experiment.trials.all()
        validations = Validation.objects.filter(trial__experiment=experiment)
        marked = candidates(experiment)
    else:
        trials = Trial.objects.filter(pk=trial.pk)
        validations = Validation.objects.filter(trial=trial)
        marked = candidates(experiment).filter(trial=trial)
    if params is None:  # the GC pages chart the searcher metric only, with no controls
        options = ChartOptions(experiment.searcher_metric, experiment.searcher_metric)
    else:
        # The metric names of the latest trials' validations: "the latest validations" of the
        # experiment by id would walk the id index across other experiments' rows.
        latest = validations.filter(trial__in=trials.order_by("-id")[:METRIC_TRIALS])
        groups = () if trial is None else reported_groups(TrialMetrics.objects.filter(trial=trial))
        options = chart_options(
            params,
            experiment.searcher_metric,
            latest,
            groups,
            lambda group: TrialMetrics.objects.filter(trial=trial, group=group),
        )
    if options.group == VALIDATION:
        lines = validation_lines(
            options.metric, validations, trials, n_validations, x_axis=options.x_axis
        )
    else:
        rows = TrialMetrics.objects.filter(trial=trial, group=options.group)
        lines = validation_lines(options.metric, rows, trials, x_axis=options.x_axis)
    markers = chart_checkpoints(marked, verdicts, n_candidates, trial_id=trial and trial.pk)
    chart = metric_chart(
        options.metric,
        lines,
        markers,
        x_axis=options.x_axis,
        log=options.log,
        searcher=options.searcher,
    )
    chart.options = options
    return chart


def comparison_chart(checkpoints: list[Checkpoint]):
    """The compared checkpoints' trials on one chart of the first one's searcher metric.

    The lines read the latest report at each step only (``services.latest_at_step``): a step
    reported many times is one point, and its earlier reports are never read.
    """
    metric = checkpoints[0].experiment.searcher_metric
    trial_ids = {c.trial_id for c in checkpoints}
    lines = validation_lines(
        metric,
        latest_at_step(Validation.objects.filter(trial_id__in=trial_ids)),
        Trial.objects.filter(pk__in=trial_ids),
    )
    markers = [
        ChartCheckpoint(
            c.id,
            c.trial_id,
            c.steps_completed,
            c.validation_metric if c.experiment.searcher_metric == metric else None,
            None,
        )
        for c in checkpoints
    ]
    return metric_chart(metric, lines, markers)
