"""``bench/results.png``: time against size for every measure of the cost curve.

A result is on the curve when its ``detail`` has ``curve`` (the measure) and ``size``
(``common.curve``); each measure gets one log-log panel, so linear growth is a straight
line of slope 1 and a flat line is a cost that does not grow.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from bench.common import Result, size_label


def curves(results: list[Result]) -> dict[str, list[tuple[int, float]]]:
    """Measure -> [(size, time)], sorted by size."""
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for result in results:
        measure = result.detail.get("curve")
        if measure is None:
            continue
        y = result.detail.get("y")
        points[measure].append((result.detail["size"], result.value if y is None else y))
    return {measure: sorted(values) for measure, values in points.items()}


def plot(results: list[Result], path: Path) -> bool:
    """Write the panels to ``path`` (PNG, matplotlib's Agg backend); False if no curve."""
    data = curves(results)
    if not data:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    columns = min(3, len(data))
    rows = math.ceil(len(data) / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for axis, (measure, points) in zip(axes.flat, data.items(), strict=False):
        sizes = [size for size, _ in points]
        values = [max(value, 1e-3) for _, value in points]
        axis.plot(sizes, values, marker="o")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(sizes, [size_label(size) for size in sizes])
        axis.set_title(measure, fontsize=10)
        axis.set_xlabel("checkpoints")
        axis.grid(True, which="both", alpha=0.3)
        for size, value in points:
            axis.annotate(f"{value:.4g}", (size, max(value, 1e-3)), fontsize=8)
    for axis in list(axes.flat)[len(data) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True
