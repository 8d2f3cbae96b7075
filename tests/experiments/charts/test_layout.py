"""The SVG chart's layout rules: downsampling bounds, extremes kept, ticks."""

from experiments.charts.axes import downsample, nice_ticks
from experiments.charts.svg import MAX_MARKERS, MAX_POINTS, ChartCheckpoint, metric_chart


def test_downsample_keeps_ends_and_extremes():
    points = [(i, float(i % 97)) for i in range(50_000)]
    points[31_337] = (31_337, -5.0)
    sampled = downsample(points, 500)
    assert len(sampled) <= 502
    assert sampled[0] == points[0] and sampled[-1] == points[-1]
    assert (31_337, -5.0) in sampled
    assert [p[0] for p in sampled] == sorted(p[0] for p in sampled)


def test_chart_is_bounded_for_large_data():
    lines = {t: [(s, 1.0 / (s + 1)) for s in range(20_000)] for t in (1, 2, 3)}
    checkpoints = [ChartCheckpoint(i, 1 + i % 3, i, 0.5, i % 7 == 0) for i in range(30_000)]
    chart = metric_chart("loss", lines, checkpoints)
    assert sum(s.points for s in chart.series) <= MAX_POINTS + 10
    assert len(chart.markers) <= MAX_MARKERS
    assert chart.kept_markers and chart.deleted_markers
    assert chart.downsampled


def test_checkpoints_without_metric_go_to_their_own_lane():
    chart = metric_chart("loss", {}, [ChartCheckpoint(1, 1, 100, None, False)])
    assert chart.has_lane and chart.markers[0].y == chart.lane_y


def test_empty_chart():
    assert metric_chart("loss", {}, []).empty


def test_nice_ticks_cover_the_range():
    ticks = nice_ticks(0.213, 0.587)
    assert ticks[0] <= 0.213 and ticks[-1] >= 0.587
    assert 3 <= len(ticks) <= 8
