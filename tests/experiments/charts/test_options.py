"""Chart choices: any metric, steps or time, log scale, 12 distinct trials, axes at the data."""

import math

import pytest

from experiments.charts.axes import data_axis, duration_label, log_label
from experiments.charts.svg import PALETTE, ChartCheckpoint, Lines, metric_chart


def test_the_x_axis_ends_at_the_last_point():
    lines = {1: [(250 * i, 1.0 / i) for i in range(1, 26)]}  # the last step is 6,250
    chart = metric_chart("loss", lines, [])
    labels = [label for _, label in chart.x_ticks]
    assert "8k" not in labels and labels[-1] == "6k"
    last_x = float(chart.series[0].path.rsplit(" L", 1)[-1].split(",")[0])
    assert last_x == chart.plot_right


def test_data_axis_survives_the_extremes():
    low, high, ticks = data_axis(-1e308, 1e308)
    assert low == -1e308 and high == 1e308 and all(math.isfinite(t) for t in ticks)
    assert data_axis(5.0, 5.0)[2]  # one value still gets ticks


def test_twelve_trials_look_different():
    assert len(set(PALETTE)) == 12
    lines = {t: [(0, float(t)), (10, float(t) + 1)] for t in range(1, 13)}
    chart = metric_chart("loss", lines, [])
    styles = {(s.colour, s.dashed) for s in chart.series}
    assert len(styles) == 12
    assert [s.dashed for s in chart.series] == [False] * 6 + [True] * 6
    assert len(chart.legend) == 12 and chart.legend_more == 0


def test_log_scale_leaves_out_values_that_are_not_positive():
    lines = {1: [(1, 1e-6), (2, 1.0), (3, 0.0), (4, 1e308)]}
    chart = metric_chart("loss", lines, [ChartCheckpoint(9, 1, 3, -2.0, True)], log=True)
    assert chart.hidden_nonpositive == 2  # the 0.0 point and the -2.0 checkpoint
    assert chart.series[0].points == 3
    labels = [label for _, label in chart.y_ticks]
    assert labels[0] == "1.0e-06" and labels[-1] == "1.0e+259"  # powers of ten inside the data
    assert len(labels) <= 8
    assert chart.markers[0].y == chart.lane_y  # shown in the lane, value in the tooltip
    assert "-2" in chart.markers[0].title


def test_log_ticks_are_powers_of_ten():
    chart = metric_chart("loss", {1: [(1, 3.0), (2, 2000.0)]}, [], log=True)
    assert [label for _, label in chart.y_ticks] == ["10", "100", "1k"]


def test_log_labels_near_the_float_limit():
    assert log_label(308) == "1.0e+308" and log_label(309) == "1e309"


def test_time_axis_counts_from_the_first_report():
    t0 = 1_700_000_000.0
    lines = {1: [(t0, 1.0), (t0 + 5400, 0.5)]}
    checkpoint = ChartCheckpoint(1, 1, 100, 0.5, True, report_time=t0 + 5400)
    chart = metric_chart("loss", lines, [checkpoint], x_axis="time")
    assert chart.x_ticks[0][1] == "0" and chart.x_label == "time since the first report"
    assert chart.markers[0].x == chart.plot_right
    assert duration_label(5400) == "1.5h" and duration_label(45) == "45s"


def test_another_metric_places_checkpoints_on_its_trial_line():
    lines = Lines({1: [(100, 3.0), (200, 4.0)]}, by_steps={1: {100: 3.0, 200: 4.0}})
    checkpoint = ChartCheckpoint(5, 1, 200, 0.1, True)  # 0.1 is the searcher metric
    chart = metric_chart("epoch", lines, [checkpoint], searcher=False)
    assert "epoch 4" in chart.markers[0].title
    assert chart.markers[0].y == chart.plot_top  # 4.0 is the top of the data


@pytest.mark.django_db
def test_the_page_offers_every_reported_metric(alice_client, alice, default_storage):
    from experiments.demo import build_training_experiment

    experiment = build_training_experiment(alice, "demo", "validation_loss", True, 2, 6, 3)
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert '<option value="epoch">epoch</option>' in html
    html = alice_client.get(
        f"/experiments/{experiment.pk}/?metric=epoch&x=time&scale=log"
    ).content.decode()
    assert "<strong>epoch</strong> vs time since the first report · log scale" in html
    html = alice_client.get(f"/experiments/{experiment.pk}/?metric=nope&x=1&scale=2").content
    assert "<strong>validation_loss</strong> vs steps<" in html.decode()
