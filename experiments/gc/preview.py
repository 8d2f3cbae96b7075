"""The GC preview: what a policy would keep and delete, without changing anything.

One function, ``gc_preview``, serves the API's ``gc-preview`` (docs/architecture.md
"Scale contract"), the GC page and its live-preview partial, the ``ckpt`` CLI (through the
API) and the Determined layer's ``preview_gc``. Its cost does not grow with what a page shows:

* the retained set is one query (``retention.retained``: a UNION of windowed selects);
* the whole id lists and the reclaimed bytes come from one narrow query of the candidates'
  ``(id, size_bytes)`` pairs — tuples, no row objects or dicts per checkpoint;
* the ``checkpoints`` rows are one page, read with LIMIT/OFFSET, plus one query of the
  model versions that pin them (the "registered as NAME vN" reason);
* on a running experiment (ACTIVE or PAUSED) only, one query of each running trial's latest
  candidate (an index lookup per trial) names the trials whose latest checkpoint the policy
  would delete (``running_trials``: what a trial resumes from; every confirmation shows it).

The GC page asks for at most ``id_limit`` ids of each list instead (a million ids are
megabytes of HTML per keystroke): the counts and bytes then come from the experiment's
summary row (``summary.candidate_totals``: candidates and their bytes, kept by the
services) minus the retained set, the deleted ids' head from keyset pages of ids.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field

from django.db.models import OuterRef, Subquery

from ckptweb.lib.db import chunked
from ckptweb.lib.limits import InvalidInput
from ckptweb.lib.policy import Policy
from experiments import summary
from experiments.choices import EXPERIMENT_RUNNING_STATES, TRIAL_RUNNING_STATES
from experiments.gc.retention import CANDIDATE_COLUMNS, RankedCheckpoint, candidates, retained
from experiments.models import Checkpoint, Experiment, Trial
from experiments.registry import registered_versions

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000
#: Largest page number accepted (keeps OFFSET within a 64-bit integer on every database).
MAX_PAGE = 2**31 - 1
#: Candidate rows read at once for the head of a cut deleted-id list (``id_limit``).
HEAD_CHUNK = 2000


@dataclass(frozen=True)
class PreviewRow(RankedCheckpoint):
    """One candidate checkpoint of a preview page, with its verdict and what pins it."""

    registered_as: str = ""  # "a v1, b v2": the model versions that pin it

    @property
    def reason(self) -> str | None:
        """Why it is always kept: "registered as NAME vN", "protected"; else None."""
        if self.registered_as:
            return f"registered as {self.registered_as}"
        return "protected" if self.protected else None

    def as_dict(self) -> dict:
        """The API's representation (``PreviewCheckpointSerializer``)."""
        return {
            "id": self.id,
            "uuid": self.uuid,
            "trial_id": self.trial_id,
            "steps_completed": self.steps_completed,
            "validation_metric": self.validation_metric,
            "size_bytes": self.size_bytes,
            "keep": self.keep,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RunningTrial:
    """A trial still running whose latest checkpoint a policy would delete."""

    trial_id: int
    checkpoint_id: int
    uuid: str
    steps_completed: int

    def as_dict(self) -> dict:
        """The API's representation (``RunningTrialSerializer``)."""
        return {
            "trial_id": self.trial_id,
            "checkpoint_id": self.checkpoint_id,
            "uuid": self.uuid,
            "steps_completed": self.steps_completed,
        }


def running_trials(experiment: Experiment, kept) -> list[RunningTrial]:
    """The running trials whose latest candidate checkpoint is not in ``kept``, by trial.

    Only a running experiment (ACTIVE or PAUSED) has running trials: a trial of an ended one
    resumes nothing, whatever its own state says. No query for an ended experiment.
    """
    if experiment.state not in EXPERIMENT_RUNNING_STATES:
        return []
    latest = (
        candidates(experiment)
        .filter(trial=OuterRef("pk"))
        .order_by("-steps_completed", "-id")
        .values("id")[:1]
    )
    pairs = (
        Trial.objects.filter(experiment=experiment, state__in=TRIAL_RUNNING_STATES)
        .annotate(latest=Subquery(latest))
        .values_list("latest", flat=True)
    )
    doomed = [pk for pk in pairs if pk is not None and pk not in kept]
    rows = []
    for part in chunked(doomed):
        rows += Checkpoint.objects.filter(pk__in=part).values_list(
            "trial_id", "id", "uuid", "steps_completed"
        )
    return [RunningTrial(trial, pk, str(uuid), steps) for trial, pk, uuid, steps in sorted(rows)]


@dataclass(frozen=True)
class GCPreview:
    """What ``policy`` keeps and deletes: id lists (descending, whole unless ``id_limit``
    cut them: see ``*_complete``), their counts, and one page of rows."""

    policy: Policy
    metric_name: str
    retained_ids: list[int]
    deleted_ids: list[int]
    reclaimed_bytes: int
    page: int
    page_size: int
    checkpoints: list[PreviewRow]
    kept: dict[int, int] = field(repr=False)  # {id: size_bytes} of the retained set
    retained_count: int = -1  # -1: len(retained_ids), the list is whole
    deleted_count: int = -1
    fingerprint: str = ""  # of the previewed state: ``preview_is_current``
    running_trials: list[RunningTrial] = field(default_factory=list)

    def __post_init__(self):
        if self.retained_count < 0:
            object.__setattr__(self, "retained_count", len(self.retained_ids))
        if self.deleted_count < 0:
            object.__setattr__(self, "deleted_count", len(self.deleted_ids))

    @property
    def count(self) -> int:
        """Number of candidates (every page together)."""
        return self.retained_count + self.deleted_count

    @property
    def retained_complete(self) -> bool:
        return len(self.retained_ids) == self.retained_count

    @property
    def deleted_complete(self) -> bool:
        return len(self.deleted_ids) == self.deleted_count

    @property
    def rows_hidden(self) -> int:
        """Candidates not on this page."""
        return max(0, self.count - len(self.checkpoints))

    def as_dict(self) -> dict:
        """The ``gc-preview`` API body (``GCPreviewSerializer``), plain enough for orjson."""
        if not (self.retained_complete and self.deleted_complete):
            raise ValueError("the API's gc-preview has the whole id lists (no id_limit)")
        return {
            "policy": self.policy.as_dict(),
            "retained_ids": self.retained_ids,
            "deleted_ids": self.deleted_ids,
            "reclaimed_bytes": self.reclaimed_bytes,
            "metric_name": self.metric_name,
            "count": self.count,
            "checkpoints": [row.as_dict() for row in self.checkpoints],
            "running_trials": [trial.as_dict() for trial in self.running_trials],
        }


def _bounded(params, name: str, default: int, maximum: int) -> int:
    """``params[name]`` as an int in 1..maximum (``default`` if absent), else InvalidInput."""
    text = params.get(name)
    if text is None or text == "":
        return default
    text = str(text).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 1 <= int(text) <= maximum:
        raise InvalidInput(name, f"{name} must be an integer from 1 to {maximum}.")
    return int(text)


def page_params(params) -> tuple[int, int]:
    """``(page, page_size)`` from ``?page=`` and ``?page_size=`` (default 1 and 200).

    Raises InvalidInput naming the field and its limit: page_size is at most 1000.
    """
    page = _bounded(params, "page", 1, MAX_PAGE)
    page_size = _bounded(params, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return page, page_size


def _deleted_head(
    ordered, kept: dict[int, int], limit: int, first: list[int], chunk: int
) -> list[int]:
    """The first ``limit`` ids of ``ordered`` (ids descending) not in ``kept``; ``first`` is
    its first ``chunk`` ids, read with the page: keyset pages follow only if kept fills it."""
    head: list[int] = []
    ids = first
    while True:
        head += [pk for pk in ids if pk not in kept][: limit - len(head)]
        if len(head) >= limit or len(ids) < chunk:
            return head
        ids = list(ordered.filter(id__lt=ids[-1]).values_list("id", flat=True)[:chunk])


def _counts(kept: dict[int, int], candidates: int) -> dict[str, int]:
    """How many of ``candidates`` the retained set ``kept`` keeps and deletes."""
    return {"retained_count": len(kept), "deleted_count": max(0, candidates - len(kept))}


def policy_counts(experiment: Experiment, policy: Policy) -> dict[str, int]:
    """``{"retained_count", "deleted_count"}`` of ``policy``: the retained set (one query)
    against the summary's candidate count, without any of the preview's lists."""
    kept = retained(experiment, policy)
    return _counts(kept, summary.candidate_totals(experiment)["n"])


def gc_preview(
    experiment: Experiment,
    policy: Policy,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    id_limit: int | None = None,
) -> GCPreview:
    """What ``policy`` would keep and delete in ``experiment``; page ``page`` of the rows.

    Four queries, whatever the size of the experiment, and one or two more on a running one
    (see the module docstring). Rows are
    ids descending; a page past the last is empty. With ``id_limit``, the id lists are their
    first ``id_limit`` ids and the counts and bytes come from an aggregate instead.
    """
    kept = retained(experiment, policy)
    ordered = candidates(experiment).order_by("-id")
    counts = {}
    if id_limit is None:
        retained_ids, deleted_ids, reclaimed = [], [], 0
        for pk, size in ordered.values_list("id", "size_bytes"):
            if pk in kept:
                retained_ids.append(pk)
            else:
                deleted_ids.append(pk)
                reclaimed += size
        top = max(retained_ids[:1] + deleted_ids[:1], default=None)
        totals = {"n": len(retained_ids) + len(deleted_ids), "top": top}
        totals["size"] = reclaimed + sum(kept.values())
    else:
        totals = summary.candidate_totals(experiment)
        retained_ids = heapq.nlargest(id_limit, kept)
        counts = _counts(kept, totals["n"])
        reclaimed = max(0, int(totals["size"] or 0) - sum(kept.values()))
    offset = (page - 1) * page_size
    if id_limit is None:
        rows = list(ordered.values_list(*CANDIDATE_COLUMNS)[offset : offset + page_size])
    else:
        # One query reads the page and the head of the deleted ids (narrow tuples).
        chunk = max(offset + page_size, HEAD_CHUNK)
        head_rows = list(ordered.values_list(*CANDIDATE_COLUMNS)[:chunk])
        rows = head_rows[offset : offset + page_size]
        deleted_ids = _deleted_head(ordered, kept, id_limit, [r[0] for r in head_rows], chunk)
    registered = registered_versions(row[0] for row in rows)
    checkpoints = [
        PreviewRow.from_row(row, kept, registered_as=", ".join(registered.get(row[0], [])))
        for row in rows
    ]
    return GCPreview(
        policy, experiment.searcher_metric, retained_ids, deleted_ids, reclaimed,
        page, page_size, checkpoints, kept, **counts,
        fingerprint=_fingerprint(policy, kept, totals),
        running_trials=running_trials(experiment, kept),
    )  # fmt: skip


def _fingerprint(policy: Policy, kept: dict[int, int], totals: dict) -> str:
    """A digest of what a preview showed: the policy, every retained id, and the candidates'
    count, bytes and largest id (a checkpoint reported, deleted or changed shows in them)."""
    state = [sorted(policy.as_dict().items()), sorted(kept), totals["n"], totals["size"] or 0]
    state.append(totals["top"])
    return hashlib.sha256(repr(state).encode()).hexdigest()[:32]


def preview_is_current(experiment: Experiment, policy: Policy, fingerprint: str) -> bool:
    """True when ``policy`` previewed now gives the state whose ``fingerprint`` a page showed.

    The GC page posts its preview's fingerprint with the policy, so a preview gone stale
    (other checkpoints kept or deleted since) is shown again instead of being applied.
    """
    return gc_preview(experiment, policy, page_size=1, id_limit=1).fingerprint == fingerprint
