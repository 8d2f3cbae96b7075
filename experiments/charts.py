"""Server-side SVG chart of the searcher metric against steps (no JavaScript library).

The data is bounded by the database, not by Python: ``validation_lines`` and
``chart_checkpoints`` fetch at most about ``MAX_POINTS`` validations and ``MAX_MARKERS``
checkpoints whatever the size of the experiment — every row when there are few, otherwise a
sample chosen in SQL (``MOD(id, k) = 0`` with ``k`` from a COUNT, plus each trial's first and
last validation so every trial keeps its line, and the checkpoints the policy keeps).
``metric_chart`` lays out one line per trial plus a marker per checkpoint — kept ones filled,
those the policy would delete hollow and red — and thins lines further to the page's budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Mod
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from experiments.models import Validation

MAX_POINTS = 2000
MAX_MARKERS = 2000
#: At most this many retained checkpoints are named in the marker query (an ``IN`` list;
#: SQLite allows 999 parameters); the rest of the markers are a sample of all candidates.
MAX_KEPT_MARKERS = 800
MAX_LEGEND = 8
PALETTE = (
    "#4f46e5",
    "#0891b2",
    "#d97706",
    "#059669",
    "#db2777",
    "#7c3aed",
    "#65a30d",
    "#0284c7",
    "#ea580c",
    "#475569",
)

WIDTH, HEIGHT = 760, 300
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 14, 62
LANE_OFFSET = 30  # the "no metric" lane sits this far below the plot


@dataclass(frozen=True)
class ChartCheckpoint:
    """What the chart needs of a checkpoint: where it goes and whether it is kept."""

    id: int
    trial_id: int
    steps_completed: int
    validation_metric: float | None
    keep: bool | None  # None: not a GC candidate (already deleted, deleting, error)


@dataclass
class Series:
    trial_id: int
    colour: str
    path: str
    points: int


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
    """Everything ``partials/metric_chart.html`` draws."""

    metric_name: str
    width: int = WIDTH
    height: int = HEIGHT
    series: list[Series] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    legend_more: int = 0
    downsampled: bool = False
    has_lane: bool = False
    empty: bool = True

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
                f'<path class="series" d="{s.path}" stroke="{s.colour}" data-trial="{s.trial_id}"/>'
                for s in self.series
            )
        )

    @property
    def markers_svg(self) -> SafeString:
        """The deleted markers (hollow, crossed) under the kept ones (filled); titles escaped."""
        deleted = (
            f'<g class="marker marker-delete" data-checkpoint="{m.checkpoint_id}">'
            f"<title>{escape(m.title)}</title>"
            f'<circle cx="{m.x}" cy="{m.y}" r="3.6"/><path d="{m.cross}"/></g>'
            for m in self.deleted_markers
        )
        kept = (
            f'<circle class="marker marker-keep" cx="{m.x}" cy="{m.y}" r="4.5" fill="{m.colour}"'
            f' data-checkpoint="{m.checkpoint_id}"><title>{escape(m.title)}</title></circle>'
            for m in self.kept_markers
        )
        return mark_safe("".join(deleted) + "".join(kept))  # noqa: S308 - titles escaped


@dataclass
class Lines:
    """``{trial_id: [(steps, metric), …]}`` and whether the database sampled the rows."""

    points: dict[int, list[tuple[int, float]]]
    sampled: bool = False


def validation_lines(
    metric_name: str,
    validations: QuerySet,
    trials: QuerySet,
    count: int | None = None,
    max_points: int = MAX_POINTS,
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
    for trial_id, steps, value in rows.order_by("trial_id", "steps_completed", "id").values_list(
        "trial_id", "steps_completed", "value"
    ):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        lines.setdefault(trial_id, {})[steps] = float(value)
    points = {trial_id: sorted(p.items()) for trial_id, p in lines.items()}
    return Lines(points, sampled)


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
        ChartCheckpoint(pk, trial_id, steps, metric, pk in kept)
        for pk, trial_id, steps, metric in rows.values_list(
            "id", "trial_id", "steps_completed", "validation_metric"
        )
    ]
    return Markers(markers, sampled)


def downsample(points: list[tuple[int, float]], budget: int) -> list[tuple[int, float]]:
    """At most about ``budget`` points: first, last and each bucket's minimum and maximum.

    Keeping the extremes of each bucket preserves the shape (spikes, the best value) that
    a plain stride would drop.
    """
    if len(points) <= budget or budget < 4:
        return points if len(points) <= max(budget, 2) else [points[0], points[-1]]
    buckets = max(1, (budget - 2) // 2)
    size = (len(points) - 2) / buckets
    kept = [points[0]]
    for b in range(buckets):
        chunk = points[1 + int(b * size) : 1 + int((b + 1) * size)]
        if not chunk:
            continue
        low = min(chunk, key=lambda p: p[1])
        high = max(chunk, key=lambda p: p[1])
        kept.extend(sorted({low, high}))
    kept.append(points[-1])
    return kept


def _stride(items: list, budget: int) -> list:
    if len(items) <= budget:
        return items
    step = len(items) / budget
    return [items[int(i * step)] for i in range(budget)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2, 2.5 or 5 times a power of ten).

    Any finite inputs work, up to ±1.8e308 and down to subnormals (DESIGN.md "Limits": any
    finite metric renders): spans are computed on halves so they cannot overflow, and
    where round steps do not exist in floating point the ticks are evenly spaced.
    """
    if not high > low:
        pad = abs(low) / 10 or 1.0
        low, high = (low - pad, low) if low + pad == math.inf else (low, low + pad)
    parts = max(count - 1, 1)
    raw = (high / 2 - low / 2) / parts * 2
    if math.isfinite(raw) and raw > 0:
        magnitude = 10.0 ** math.floor(math.log10(raw))
        if magnitude > 0 and math.isfinite(magnitude * 10):
            step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
            start = math.floor(low / step) * step
            ticks = []
            value = start
            while (not ticks or ticks[-1] < high) and len(ticks) < 20:
                ticks.append(round(value, 12))
                value += step
            if all(math.isfinite(t) for t in ticks) and len(set(ticks)) == len(ticks) > 1:
                return ticks
    return [low * (1 - i / parts) + high * (i / parts) for i in range(parts)] + [high]


def axis_fraction(value: float, low: float, high: float) -> float:
    """Where ``value`` sits between ``low`` and ``high`` (0..1), without overflowing."""
    span = high / 2 - low / 2
    if not span > 0:
        return 0.5
    return min(max((value / 2 - low / 2) / span, 0.0), 1.0)


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.1e}"
    if abs(value) >= 1000 and float(value).is_integer():
        return f"{value / 1000:g}k"
    return f"{value:.4g}"


def metric_chart(
    metric_name: str,
    lines: dict[int, list[tuple[int, float]]] | Lines,
    checkpoints: Iterable[ChartCheckpoint] | Markers,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Lay out the chart: one polyline per trial and a marker per checkpoint.

    ``lines`` and ``checkpoints`` may come sampled from the database (``Lines``,
    ``Markers``); the chart then says it is downsampled.
    """
    chart = Chart(metric_name=metric_name, width=width, height=height)
    if isinstance(lines, Lines):
        chart.downsampled |= lines.sampled
        lines = lines.points
    if isinstance(checkpoints, Markers):
        chart.downsampled |= checkpoints.sampled
        checkpoints = checkpoints.checkpoints
    checkpoints = list(checkpoints)
    trial_ids = sorted(set(lines) | {c.trial_id for c in checkpoints})
    if not trial_ids:
        return chart
    colours = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(trial_ids)}

    budget = max(4, MAX_POINTS // max(len(lines), 1))
    sampled = {}
    for trial_id, points in lines.items():
        sampled[trial_id] = downsample(points, budget)
        chart.downsampled |= len(sampled[trial_id]) < len(points)

    kept = [c for c in checkpoints if c.keep is not False]
    dropped = [c for c in checkpoints if c.keep is False]
    if len(checkpoints) > MAX_MARKERS:
        share = max(1, MAX_MARKERS * len(kept) // len(checkpoints))
        kept = _stride(kept, share)
        dropped = _stride(dropped, MAX_MARKERS - len(kept))
        chart.downsampled = True
    shown = kept + dropped

    xs = [p[0] for pts in sampled.values() for p in pts] + [c.steps_completed for c in shown]
    ys = [p[1] for pts in sampled.values() for p in pts] + [
        c.validation_metric for c in shown if c.validation_metric is not None
    ]
    if not xs:
        return chart
    chart.empty = False
    x_ticks = nice_ticks(min(0, min(xs)), max(xs))
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    if ys:
        y_ticks = nice_ticks(min(ys), max(ys))
        y_lo, y_hi = y_ticks[0], y_ticks[-1]
    else:
        y_ticks, y_lo, y_hi = [], 0.0, 1.0

    def sx(steps: float) -> float:
        fraction = axis_fraction(steps, x_lo, x_hi)
        return round(chart.plot_left + fraction * (chart.plot_right - chart.plot_left), 1)

    def sy(value: float) -> float:
        fraction = axis_fraction(value, y_lo, y_hi)
        return round(chart.plot_bottom - fraction * (chart.plot_bottom - chart.plot_top), 1)

    chart.x_ticks = [(sx(t), _tick_label(t)) for t in x_ticks]
    chart.y_ticks = [(sy(t), _tick_label(t)) for t in y_ticks]
    for trial_id in trial_ids:
        points = sampled.get(trial_id, [])
        if points:
            path = "M" + " L".join(f"{sx(s)},{sy(v)}" for s, v in points)
            chart.series.append(Series(trial_id, colours[trial_id], path, len(points)))
    for c in shown:
        verdict = {True: "kept", False: "would be deleted", None: "not a GC candidate"}[c.keep]
        if c.validation_metric is None:
            y = chart.lane_y
            chart.has_lane = True
            value = "no metric"
        else:
            y = sy(c.validation_metric)
            value = f"{metric_name} {c.validation_metric:.4g}"
        title = f"Checkpoint {c.id} · trial {c.trial_id} · step {c.steps_completed} · {value}"
        chart.markers.append(
            Marker(
                sx(c.steps_completed), y, colours[c.trial_id], c.keep, f"{title} · {verdict}", c.id
            )
        )
    chart.legend = [(f"Trial {t}", colours[t]) for t in trial_ids[:MAX_LEGEND]]
    chart.legend_more = max(0, len(trial_ids) - MAX_LEGEND)
    return chart
