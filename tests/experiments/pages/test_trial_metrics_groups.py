"""The trial page charts any metrics group the trial reported, and shows its latest log lines.

DESIGN.md "Metrics groups": ``?group=training&metric=loss`` draws the training loss (the
group's metric names offered, the checkpoints on its line); a group with more reports than
the chart draws is sampled by the database as validations are. Log lines (bounded per
trial by ``experiments.logs``) are shown escaped, the latest last.
"""

import pytest
from django.urls import reverse

from ckptweb.lib.limits import InvalidInput
from experiments import batch, logs, services
from experiments.charts.data import MAX_POINTS
from experiments.charts.options import reported_groups
from experiments.models import TrialLog, TrialMetrics
from tests.factories import add_checkpoints

pytestmark = pytest.mark.django_db


def page(client, trial, **params):
    return client.get(reverse("experiments:trial", args=[trial.pk]), params)


def test_the_chart_offers_and_draws_a_group(alice_client, trial):
    services.report_validation(trial, 20, {"loss": 0.7})
    batch.report_metrics(
        trial,
        "training",
        [{"steps_completed": s, "metrics": {"loss": 1.0 / s, "lr": 0.1}} for s in range(1, 31)],
    )
    add_checkpoints(trial, [(20, None)])

    default = page(alice_client, trial)
    assert default.context["chart"].options.group == "validation"
    assert default.context["chart"].options.groups == ("validation", "training")
    assert b'id="chart-group"' in default.content

    response = page(alice_client, trial, group="training", metric="lr")
    chart = response.context["chart"]
    assert (chart.options.group, chart.metric_name) == ("training", "lr")
    assert chart.options.metrics == ("loss", "lr")
    assert not chart.options.searcher
    assert chart.series[0].points == 30
    assert b"training \xc2\xb7</span> lr" in response.content

    # An unknown group or metric falls back, never breaks the page.
    fallback = page(alice_client, trial, group="nope", metric="nope").context["chart"]
    assert (fallback.options.group, fallback.metric_name) == ("validation", "loss")
    first = page(alice_client, trial, group="training", metric="nope").context["chart"]
    assert first.metric_name == "loss"


def test_a_large_group_is_sampled(alice_client, trial):
    TrialMetrics.objects.bulk_create(
        TrialMetrics(trial=trial, group="training", steps_completed=s, metrics={"loss": s})
        for s in range(1, 3 * MAX_POINTS)
    )
    chart = page(alice_client, trial, group="training").context["chart"]
    assert chart.downsampled
    assert MAX_POINTS // 4 < chart.series[0].points <= MAX_POINTS


def test_the_latest_log_lines_are_shown_escaped(alice_client, trial):
    logs.append_trial_logs(trial, [("epoch 1 <script>alert(1)</script>", None)])
    logs.append_trial_logs(trial, [(f"line {n}", None) for n in range(300)])
    body = page(alice_client, trial).content.decode()
    assert "line 299" in body and "line 100" in body
    assert "line 99\n" not in body  # only the latest 200
    assert "<script>alert(1)" not in body


def test_a_trials_log_is_bounded(trial, monkeypatch):
    monkeypatch.setattr(logs, "MAX_TRIAL_LINES", 50)
    for start in range(0, 120, 40):
        logs.append_trial_logs(trial, [(f"line {n}", None) for n in range(start, start + 40)])
    kept = list(TrialLog.objects.filter(trial=trial).values_list("line", flat=True))
    assert kept == [f"line {n}" for n in range(70, 120)]


def test_log_lines_are_cut_and_cleaned(trial):
    long = "x" * (logs.MAX_LINE_CHARS + 10)
    logs.append_trial_logs(trial, [(long, None), ("nul\x00here \ud800", None)])
    first, second = TrialLog.objects.filter(trial=trial).order_by("id")
    assert len(first.line) == logs.MAX_LINE_CHARS and first.line.endswith("…")
    assert "\x00" not in second.line and second.line.startswith("nul")
    with pytest.raises(InvalidInput):
        logs.append_trial_logs(trial, [("x", None)] * (logs.MAX_LINES + 1))


def test_the_groups_are_found_by_one_probe_each(trial, django_assert_num_queries):
    """Not a DISTINCT over every report: one index probe per group, and one that finds none."""
    for group in ("training", "eval.extra"):
        items = [{"steps_completed": s, "metrics": {"loss": 1.0}} for s in range(200)]
        batch.report_metrics(trial, group, items)
    rows = TrialMetrics.objects.filter(trial=trial)
    with django_assert_num_queries(3):
        assert reported_groups(rows) == ("validation", "eval.extra", "training")
