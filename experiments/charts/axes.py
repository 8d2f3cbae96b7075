"""Chart axes and thinning: round ticks, positions without overflow, labels, downsampling.

Any finite value works, up to ±1.8e308 (docs/architecture.md "Limits and bad input": any
finite metric renders):
spans are computed on halves so they cannot overflow. ``data_axis`` makes an axis that ends
at the data — its ends are the data's extremes and the round ticks inside them are labelled
— rather than one stretched to the next round number past the last point.
"""

from __future__ import annotations

import math


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2, 2.5 or 5 times a power of ten).

    Any finite inputs work, up to ±1.8e308 and down to subnormals (docs/architecture.md
    "Limits and bad input": any finite metric renders): spans are computed on halves so
    they cannot overflow, and where round steps do not exist in floating point the ticks are
    evenly spaced.
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


def tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.1e}"
    if abs(value) >= 1000 and float(value).is_integer():
        return f"{value / 1000:g}k"
    return f"{value:.4g}"


def data_axis(low: float, high: float, count: int = 5) -> tuple[float, float, list[float]]:
    """``(low, high, ticks)`` for an axis ending exactly at the data.

    The ticks are the round values of ``nice_ticks`` that fall inside; with fewer than two
    of them the ends themselves are the ticks. A single value gets the padded round range.
    """
    ticks = nice_ticks(low, high, count)
    if not high > low:
        return ticks[0], ticks[-1], ticks
    inside = [t for t in ticks if low <= t <= high]
    if len(inside) < 2:
        inside = [low, high]
    return low, high, inside


def log_axis(low: float, high: float) -> tuple[float, float, list[float]]:
    """``data_axis`` for log10 values: whole powers of ten as ticks when the data spans them."""
    low, high, ticks = data_axis(low, high)
    if high - low >= 1:
        step = max(1, math.ceil((math.floor(high) - math.ceil(low)) / 6))
        powers = [float(e) for e in range(math.ceil(low), math.floor(high) + 1, step)]
        if len(powers) >= 2:
            ticks = powers
    return low, high, ticks


def duration_label(seconds: float) -> str:
    """Elapsed time on the time axis: ``0``, ``45s``, ``12m``, ``1.5h``, ``3.2d``."""
    if seconds == 0:
        return "0"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def log_label(exponent: float) -> str:
    """The label of a log-scale tick at ``10 ** exponent`` (no overflow near 1e308)."""
    try:
        return tick_label(10.0**exponent)
    except OverflowError:
        return f"1e{exponent:.0f}"


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


def stride(items: list, budget: int) -> list:
    if len(items) <= budget:
        return items
    step = len(items) / budget
    return [items[int(i * step)] for i in range(budget)]
