"""Server-side SVG chart of a validation metric against steps or time (no JS library).

``metric_chart`` lays out one line per trial plus a marker per checkpoint — kept ones filled,
those the policy would delete hollow and red — and thins lines further to the page's budget.
Its input is bounded by the database (``experiments.charts.data``: at most about
``MAX_POINTS`` validations and ``MAX_MARKERS`` checkpoints whatever the size of the
experiment). Any reported metric can be drawn (``experiments.charts.options`` reads the
page's choice), on a linear or log10 scale, in a colour-blind-safe palette of 12 (dashed
past the sixth).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from experiments.charts.axes import (
    axis_fraction,
    data_axis,
    downsample,
    duration_label,
    log_axis,
    log_label,
    stride,
    tick_label,
)
from experiments.charts.data import MAX_MARKERS, MAX_POINTS, ChartCheckpoint, Lines, Markers

MAX_LEGEND = 12
#: Colour-blind-safe (Okabe & Ito, then Paul Tol's muted scheme): 12 distinct hues on
#: white. Trials past the sixth are also dashed, so no two of 12 lines look alike.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#332288",
    "#999933",
    "#882255",
    "#44AA99",
    "#3B3B3B",
    "#DDAA33",
)
DASHED_FROM = 6

WIDTH, HEIGHT = 760, 300
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 14, 62
LANE_OFFSET = 30  # the "no metric" lane sits this far below the plot


@dataclass
class Series:
    trial_id: int
    colour: str
    path: str
    points: int
    dashed: bool = False


@dataclass
class Marker:
    x: float
    y: float
    colour: str
    keep: bool | None
    title: str
    checkpoint_id: int

    @property
    def cross(self) -> str:
        """The SVG path of the × drawn inside a deleted checkpoint's marker."""
        return f"M{self.x - 2},{self.y - 2} l4,4 m0,-4 l-4,4"


@dataclass
class Chart:
    """Everything ``experiments/charts/metric_chart.html`` draws."""

    metric_name: str
    width: int = WIDTH
    height: int = HEIGHT
    series: list[Series] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str, bool]] = field(default_factory=list)  # label, colour, dashed
    legend_more: int = 0
    downsampled: bool = False
    has_lane: bool = False
    empty: bool = True
    x_axis: str = "steps"  # steps | time
    log: bool = False
    hidden_nonpositive: int = 0  # values a log scale cannot show
    options: object = None  # the page's ChartOptions, for its controls

    @property
    def has_verdicts(self) -> bool:
        """Whether any marker is a GC candidate (the legend explains kept and deleted)."""
        return any(m.keep is not None for m in self.markers)

    @property
    def x_label(self) -> str:
        return "time since the first report" if self.x_axis == "time" else "steps"

    @property
    def plot_left(self) -> int:
        return PAD_LEFT

    @property
    def plot_right(self) -> int:
        return self.width - PAD_RIGHT

    @property
    def plot_top(self) -> int:
        return PAD_TOP

    @property
    def plot_bottom(self) -> int:
        return self.height - PAD_BOTTOM

    @property
    def lane_y(self) -> int:
        return self.plot_bottom + LANE_OFFSET

    @property
    def kept_markers(self) -> list[Marker]:
        return [m for m in self.markers if m.keep is not False]

    @property
    def deleted_markers(self) -> list[Marker]:
        return [m for m in self.markers if m.keep is False]

    # The SVG elements are built here rather than in template loops: a chart has up to a
    # few thousand of them, which the template engine renders about 50 times slower.

    @property
    def series_svg(self) -> SafeString:
        """One ``<path class="series">`` per trial (numbers and palette colours only)."""
        return mark_safe(  # noqa: S308 - numbers and palette colours, nothing user-given
            "".join(
                f'<path class="series{" series-dashed" if s.dashed else ""}" d="{s.path}"'
                f' stroke="{s.colour}" data-trial="{s.trial_id}"/>'
                for s in self.series
            )
        )

    @property
    def markers_svg(self) -> SafeString:
        """The deleted markers (hollow, crossed) under the kept ones (filled); titles escaped."""
        deleted = (
            f'<g class="marker marker-delete" data-checkpoint="{m.checkpoint_id}"'
            f' data-tip="{escape(m.title)}"><title>{escape(m.title)}</title>'
            f'<circle cx="{m.x}" cy="{m.y}" r="3"/><path d="{m.cross}"/></g>'
            for m in self.deleted_markers
        )
        kept = (
            f'<circle class="marker marker-keep" cx="{m.x}" cy="{m.y}" r="4.5" fill="{m.colour}"'
            f' data-checkpoint="{m.checkpoint_id}" data-tip="{escape(m.title)}">'
            f"<title>{escape(m.title)}</title></circle>"
            for m in self.kept_markers
        )
        return mark_safe("".join(deleted) + "".join(kept))  # noqa: S308 - titles escaped


@dataclass
class _Values:
    """What a chart plots of a metric: the value, or its log10 (None when it cannot be shown)."""

    chart: Chart
    log: bool

    def shown(self, value: float | None) -> float | None:
        if value is None or not self.log:
            return value
        if value > 0:
            return math.log10(value)
        self.chart.hidden_nonpositive += 1
        return None


def _sample_lines(chart: Chart, lines: dict, values: _Values) -> dict[int, list]:
    """Each trial's line within the point budget, as (x, shown value) pairs."""
    budget = max(4, MAX_POINTS // max(len(lines), 1))
    sampled = {}
    for trial_id, points in lines.items():
        kept_points = downsample(points, budget)
        chart.downsampled |= len(kept_points) < len(points)
        plotted = [(x, values.shown(v)) for x, v in kept_points]
        sampled[trial_id] = [(x, v) for x, v in plotted if v is not None]
    return sampled


def _sample_markers(chart: Chart, checkpoints: list[ChartCheckpoint]) -> list[ChartCheckpoint]:
    """At most ``MAX_MARKERS`` checkpoints, kept and deleted in their proportions."""
    kept = [c for c in checkpoints if c.keep is not False]
    dropped = [c for c in checkpoints if c.keep is False]
    if len(checkpoints) > MAX_MARKERS:
        share = max(1, MAX_MARKERS * len(kept) // len(checkpoints))
        kept = stride(kept, share)
        dropped = stride(dropped, MAX_MARKERS - len(kept))
        chart.downsampled = True
    return kept + dropped


@dataclass
class _Scale:
    """Data to pixels on both axes, which end at the data (``axes.data_axis``)."""

    chart: Chart
    origin: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    @classmethod
    def fit(cls, chart: Chart, xs: list[float], ys: list[float]) -> _Scale:
        """The scale of ``xs`` and ``ys`` (shown values), with the chart's ticks set."""
        time = chart.x_axis == "time"
        origin = min(xs) if time else 0.0
        if time:
            xs = [x - origin for x in xs]
        x_lo, x_hi, x_ticks = data_axis(min(0.0, min(xs)), max(xs))
        if ys:
            y_lo, y_hi, y_ticks = (log_axis if chart.log else data_axis)(min(ys), max(ys))
        else:
            y_ticks, y_lo, y_hi = [], 0.0, 1.0
        scale = cls(chart, origin, (x_lo, x_hi), (y_lo, y_hi))
        x_label = duration_label if time else tick_label
        chart.x_ticks = [(scale.x(t + origin), x_label(t)) for t in x_ticks]
        chart.y_ticks = [
            (scale.y(t), log_label(t) if chart.log else tick_label(t)) for t in y_ticks
        ]
        return scale

    def x(self, x: float) -> float:
        fraction = axis_fraction(x - self.origin, *self.x_range)
        chart = self.chart
        return round(chart.plot_left + fraction * (chart.plot_right - chart.plot_left), 1)

    def y(self, value: float) -> float:
        fraction = axis_fraction(value, *self.y_range)
        chart = self.chart
        return round(chart.plot_bottom - fraction * (chart.plot_bottom - chart.plot_top), 1)


def metric_chart(
    metric_name: str,
    lines: dict[int, list[tuple[int, float]]] | Lines,
    checkpoints: Iterable[ChartCheckpoint] | Markers,
    width: int = WIDTH,
    height: int = HEIGHT,
    x_axis: str = "steps",
    log: bool = False,
    searcher: bool = True,
) -> Chart:
    """Lay out the chart: one polyline per trial and a marker per checkpoint.

    ``lines`` and ``checkpoints`` may come sampled from the database (``Lines``,
    ``Markers``); the chart then says it is downsampled. ``x_axis`` is ``steps`` or
    ``time`` (seconds since the first report, so ``lines`` must hold report times);
    ``log`` draws the metric on a log10 scale, leaving out values ≤ 0 (counted in
    ``hidden_nonpositive``). When ``metric_name`` is not the searcher metric
    (``searcher=False``) a checkpoint sits on its trial's value at its step, if any.
    The steps: sample the lines and the markers, fit the scale, draw.
    """
    chart = Chart(metric_name=metric_name, width=width, height=height, x_axis=x_axis, log=log)
    by_steps: dict[int, dict[int, float]] = {}
    if isinstance(lines, Lines):
        chart.downsampled |= lines.sampled
        by_steps = lines.by_steps
        lines = lines.points
    if isinstance(checkpoints, Markers):
        chart.downsampled |= checkpoints.sampled
        checkpoints = checkpoints.checkpoints
    checkpoints = list(checkpoints)
    trial_ids = sorted(set(lines) | {c.trial_id for c in checkpoints})
    if not trial_ids:
        return chart
    colours = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(trial_ids)}
    dashed = {t: i % (2 * DASHED_FROM) >= DASHED_FROM for i, t in enumerate(trial_ids)}
    values = _Values(chart, log)
    sampled = _sample_lines(chart, lines, values)

    def marker_x(c: ChartCheckpoint) -> float | None:
        return c.report_time if x_axis == "time" else c.steps_completed

    def marker_metric(c: ChartCheckpoint) -> float | None:
        if searcher:
            return c.validation_metric
        return by_steps.get(c.trial_id, {}).get(c.steps_completed)

    shown = [c for c in _sample_markers(chart, checkpoints) if marker_x(c) is not None]
    shown_values = {c.id: values.shown(marker_metric(c)) for c in shown}
    xs = [p[0] for pts in sampled.values() for p in pts] + [marker_x(c) for c in shown]
    ys = [p[1] for pts in sampled.values() for p in pts] + [
        v for v in shown_values.values() if v is not None
    ]
    if not xs:
        return chart
    chart.empty = False
    scale = _Scale.fit(chart, xs, ys)
    for trial_id in trial_ids:
        points = sampled.get(trial_id, [])
        if points:
            path = "M" + " L".join(f"{scale.x(x)},{scale.y(v)}" for x, v in points)
            chart.series.append(
                Series(trial_id, colours[trial_id], path, len(points), dashed[trial_id])
            )
    for c in shown:
        verdict = {True: "kept", False: "would be deleted", None: "not a GC candidate"}[c.keep]
        metric = marker_metric(c)
        if shown_values[c.id] is None:
            y = chart.lane_y
            chart.has_lane = True
            value = "no metric" if metric is None else f"{metric_name} {metric:.4g}"
        else:
            y = scale.y(shown_values[c.id])
            value = f"{metric_name} {metric:.4g}"
        title = f"Checkpoint {c.id} · trial {c.trial_id} · step {c.steps_completed:,} · {value}"
        chart.markers.append(
            Marker(
                scale.x(marker_x(c)), y, colours[c.trial_id], c.keep, f"{title} · {verdict}", c.id
            )
        )
    chart.legend = [(f"Trial {t}", colours[t], dashed[t]) for t in trial_ids[:MAX_LEGEND]]
    chart.legend_more = max(0, len(trial_ids) - MAX_LEGEND)
    return chart
