"""``/compare/?checkpoints=UUID,UUID,…``: two to eight checkpoints side by side.

One column per checkpoint, in the order given: experiment, trial, steps, size, state, the
validation metrics reported at the checkpoint's step and the trial's hyperparameters. A
row whose values differ between the columns is marked (``row-differs``) so the eye goes to
what changed. Below, the trials' curves of the first checkpoint's searcher metric on one
chart, with the compared checkpoints as markers. Bad input (not 2–8 uuids, unknown ones)
is a 400 page naming the parameter and the limit.

Bounded whatever was reported: one validation per checkpoint, the latest at its step
(``services.latest_validations``, one query however many reports share the step), and at
most ``MAX_ROWS`` metric and ``MAX_ROWS`` hyperparameter rows (a metrics dict may hold
thousands of names; the first checkpoint's searcher metric comes first, the rest by
name, and the page says how many more there are). Each validation's metrics are read
whole: at most 1 MiB a field (``ckptweb.lib.limits``) times ``MAX_COMPARED``, which is
cheaper than picking the shown names out of the JSON in SQL before knowing them.
"""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from experiments import services
from experiments.charts import comparison_chart
from experiments.models import Checkpoint

MIN_COMPARED, MAX_COMPARED = 2, 8
#: Most metric rows, and most hyperparameter rows, the table shows.
MAX_ROWS = 200
PARAM = "checkpoints"


class CompareError(ValueError):
    """The ``checkpoints`` parameter is unusable; the message says why."""


def parse_uuids(raw: str) -> list[uuid_lib.UUID]:
    """The distinct uuids of a comma-separated list, in order; 2 to 8 of them."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > MAX_COMPARED:
        raise CompareError(f"{PARAM}: at most {MAX_COMPARED} checkpoints can be compared.")
    uuids: list[uuid_lib.UUID] = []
    for part in parts:
        try:
            value = uuid_lib.UUID(part)
        except ValueError:
            raise CompareError(f"{PARAM}: {part[:40]!r} is not a checkpoint UUID.") from None
        if value not in uuids:
            uuids.append(value)
    if len(uuids) < MIN_COMPARED:
        raise CompareError(
            f"{PARAM}: choose {MIN_COMPARED} to {MAX_COMPARED} different checkpoints "
            "(comma-separated UUIDs)."
        )
    return uuids


@dataclass
class CompareRow:
    """One line of the comparison: a label and one value per checkpoint."""

    label: str
    values: list
    kind: str = "text"  # text | metric | bytes | steps

    @property
    def differs(self) -> bool:
        return len({repr(v) for v in self.values}) > 1


def compared_checkpoints(uuids: list[uuid_lib.UUID]) -> list[Checkpoint]:
    """The checkpoints of ``uuids`` in that order; CompareError names any unknown one."""
    found = {
        c.uuid: c
        for c in Checkpoint.objects.filter(uuid__in=uuids).select_related("trial", "experiment")
    }
    missing = [str(u) for u in uuids if u not in found]
    if missing:
        raise CompareError(f"{PARAM}: no checkpoint {', '.join(missing)}.")
    return [found[u] for u in uuids]


def _rows(names: set[str], values: list[dict], kind: str, first: str | None = None):
    """At most ``MAX_ROWS`` rows of ``names`` (``first`` leading, then by name) and how
    many more names there are."""
    ordered = sorted(names - {first})
    if first in names:
        ordered.insert(0, first)
    rows = [CompareRow(n, [v.get(n) for v in values], kind) for n in ordered[:MAX_ROWS]]
    return rows, len(ordered) - len(rows)


def comparison_rows(checkpoints: list[Checkpoint]) -> dict:
    """Summary, metric and hyperparameter rows; metrics from each checkpoint's validation.

    ``metrics_more`` and ``hparams_more`` count the names past ``MAX_ROWS``.
    """
    metrics = [(v.metrics if v else None) or {} for v in services.latest_validations(checkpoints)]
    hparams = [c.trial.hparams if isinstance(c.trial.hparams, dict) else {} for c in checkpoints]
    summary = [
        CompareRow("Experiment", [c.experiment.name for c in checkpoints]),
        CompareRow("Trial", [c.trial_id for c in checkpoints]),
        CompareRow("Steps", [c.steps_completed for c in checkpoints], "steps"),
        CompareRow("State", [c.state for c in checkpoints], "state"),
        CompareRow("Size", [c.size_bytes for c in checkpoints], "bytes"),
        CompareRow("Files", [len(c.resources or {}) for c in checkpoints]),
    ]
    searcher = checkpoints[0].experiment.searcher_metric
    metric_rows, metrics_more = _rows({n for m in metrics for n in m}, metrics, "metric", searcher)
    hparam_rows, hparams_more = _rows({n for h in hparams for n in h}, hparams, "text")
    return {
        "summary": summary,
        "metrics": metric_rows,
        "metrics_more": metrics_more,
        "hparams": hparam_rows,
        "hparams_more": hparams_more,
    }


@login_required
@require_GET
def compare(request):
    """The comparison page; a 400 page with the reason for an unusable selection."""
    try:
        checkpoints = compared_checkpoints(parse_uuids(request.GET.get(PARAM, "")[:8192]))
    except CompareError as exc:
        return render(request, "experiments/compare.html", {"problem": str(exc)}, status=400)
    return render(
        request,
        "experiments/compare.html",
        {
            "checkpoints": checkpoints,
            "rows": comparison_rows(checkpoints),
            "chart": comparison_chart(checkpoints),
        },
    )
