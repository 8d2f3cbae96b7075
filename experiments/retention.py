"""Which checkpoints a GC policy keeps, computed by the database.

One query ranks an experiment's candidate checkpoints (COMPLETED or PARTIALLY_DELETED)
three ways with window functions — best over the experiment, best within the trial, latest
within the trial — and a checkpoint is kept when any rank is within the policy, or it is
protected, or it is registered (a ModelVersion pins it; see ``experiments.registry``). The
registered set is a subquery of the same query, so a policy can never outvote it. The rules
are DESIGN.md "Retention (GC) semantics":

* "best" orders by the validation metric (ascending when ``smaller_is_better``, else
  descending), ties to the smaller ``steps_completed``, then the smaller id; checkpoints
  without a metric are never "best";
* "latest" orders by ``steps_completed`` descending, then id descending.

Runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import CharField, Count, F, Q, Window
from django.db.models.functions import Cast, RowNumber

from ckptweb.limits import ByteSum, printable
from experiments.choices import GC_CANDIDATE_STATES
from experiments.models import POLICY_FIELDS, Checkpoint, Experiment, ModelVersion
from experiments.registry import registered_versions


class InvalidPolicy(ValueError):
    """A GC policy value that is not a non-negative integer; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Policy:
    """The three ``save_*`` numbers of a GC policy."""

    save_experiment_best: int = 0
    save_trial_best: int = 1
    save_trial_latest: int = 1

    @classmethod
    def from_values(cls, values: dict, fallback: dict | None = None) -> Policy:
        """Build a policy from a dict of strings or ints; missing keys come from ``fallback``.

        Raises InvalidPolicy naming the field for a negative, fractional or non-numeric value.
        """
        fallback = fallback or {}
        numbers = {}
        for field in POLICY_FIELDS:
            value = values.get(field)
            if value is None or value == "":
                value = fallback.get(field, getattr(cls, field))
            numbers[field] = parse_policy_value(field, value)
        return cls(**numbers)

    def as_dict(self) -> dict[str, int]:
        return {field: getattr(self, field) for field in POLICY_FIELDS}


def parse_policy_value(field: str, value) -> int:
    """One ``save_*`` value as a non-negative int, else InvalidPolicy naming ``field``."""
    if isinstance(value, bool):
        raise InvalidPolicy(field, f"{field} must be a non-negative integer, not {value!r}.")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            shown = printable(value)
            raise InvalidPolicy(field, f"{field} must be a non-negative integer, not {shown!r}.")
        if len(text) > 10:
            raise InvalidPolicy(field, f"{field} is too large (at most {2**31 - 1}).")
        value = int(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise InvalidPolicy(field, f"{field} must be a non-negative integer, not {value!r}.")
    if value > 2**31 - 1:
        raise InvalidPolicy(field, f"{field} is too large (at most {2**31 - 1}).")
    return value


@dataclass(frozen=True)
class RankedCheckpoint:
    """A candidate checkpoint with the verdict of a policy."""

    id: int
    uuid: str
    trial_id: int
    steps_completed: int
    validation_metric: float | None
    size_bytes: int
    protected: bool
    keep: bool


def _best_order(experiment: Experiment) -> list:
    metric = F("validation_metric")
    first = metric.asc() if experiment.smaller_is_better else metric.desc()
    return [first, F("steps_completed").asc(), F("id").asc()]


LATEST_ORDER = [F("steps_completed").desc(), F("id").desc()]


def candidates(experiment: Experiment):
    """The GC candidates of ``experiment``: COMPLETED or PARTIALLY_DELETED checkpoints."""
    return Checkpoint.objects.filter(experiment=experiment, state__in=GC_CANDIDATE_STATES)


def pinned() -> Q:
    """Checkpoints no policy may delete: protected, or registered as a model version."""
    return Q(protected=True) | Q(pk__in=ModelVersion.objects.values("checkpoint_id"))


def _top(queryset, order_by, limit: int, per_trial: bool):
    """(id, size_bytes) of the first ``limit`` rows by ``order_by``, overall or per trial."""
    window = Window(
        RowNumber(), partition_by=[F("trial_id")] if per_trial else None, order_by=order_by
    )
    return (
        queryset.annotate(rank=window)
        .filter(rank__lte=limit)
        .order_by()
        .values_list("id", "size_bytes")
    )


def retained_query(experiment: Experiment, policy: Policy):
    """One query (a UNION of windowed selects) of the (id, size_bytes) that ``policy`` keeps.

    Each part ranks with a single ROW_NUMBER() window whose order matches a partial index
    (see Checkpoint.Meta.indexes), so PostgreSQL reads it in index order without sorting
    and stops early where it can. Parts whose number is 0 are left out.
    """
    base = candidates(experiment)
    with_metric = base.filter(validation_metric__isnull=False)
    best = _best_order(experiment)
    parts = [base.filter(pinned()).order_by().values_list("id", "size_bytes")]
    if policy.save_experiment_best:
        parts.append(_top(with_metric, best, policy.save_experiment_best, per_trial=False))
    if policy.save_trial_best:
        parts.append(_top(with_metric, best, policy.save_trial_best, per_trial=True))
    if policy.save_trial_latest:
        parts.append(_top(base, LATEST_ORDER, policy.save_trial_latest, per_trial=True))
    first, *rest = parts
    return first.union(*rest) if rest else first


def retained(experiment: Experiment, policy: Policy) -> dict[int, int]:
    """{id: size_bytes} of the candidates ``policy`` keeps (one query)."""
    return dict(retained_query(experiment, policy))


def ranked_candidates(experiment: Experiment, policy: Policy) -> list[RankedCheckpoint]:
    """Every GC candidate of ``experiment`` with ``keep`` set by ``policy``, ids descending.

    Two queries: the retained set (``retained_query``) and the list of candidates.
    """
    kept = retained(experiment, policy)
    rows = (
        candidates(experiment)
        .order_by("-id")
        .values_list(
            "id",
            "uuid",
            "trial_id",
            "steps_completed",
            "validation_metric",
            "size_bytes",
            "protected",
        )
    )
    return [
        RankedCheckpoint(pk, str(uuid), trial_id, steps, metric, size, protected, pk in kept)
        for pk, uuid, trial_id, steps, metric, size, protected in rows
    ]


def retained_checkpoints(experiment: Experiment, policy: Policy) -> list[int]:
    """Ids of the candidates ``policy`` keeps, descending."""
    return sorted(retained(experiment, policy), reverse=True)


def deleted_checkpoints(experiment: Experiment, policy: Policy) -> list[int]:
    """Ids of the candidates ``policy`` deletes, descending."""
    kept = retained(experiment, policy)
    ids = candidates(experiment).order_by("-id").values_list("id", flat=True)
    return [pk for pk in ids if pk not in kept]


def retention_summary(experiment: Experiment, policy: Policy) -> dict:
    """Counts and bytes kept and deleted under ``policy``, without listing every candidate.

    Two queries whatever the size of the experiment: the retained set and one aggregate.
    """
    kept = retained(experiment, policy)
    totals = candidates(experiment).aggregate(count=Count("id"), size=ByteSum("size_bytes"))
    kept_bytes = sum(kept.values())
    return {
        "retained_ids": kept,
        "retained_count": len(kept),
        "deleted_count": totals["count"] - len(kept),
        "retained_bytes": kept_bytes,
        "reclaimed_bytes": max(int(totals["size"] or 0) - kept_bytes, 0),
    }


def keep_reasons(experiment: Experiment) -> dict[int, str]:
    """{id: why it is always kept} for the pinned candidates: registered, then protected."""
    always_kept = dict(
        candidates(experiment).filter(pinned()).order_by().values_list("id", "protected")
    )
    reasons = {pk: "protected" for pk, protected in always_kept.items() if protected}
    for pk, labels in registered_versions(always_kept).items():
        reasons[pk] = f"registered as {', '.join(labels)}"
    return reasons


def candidate_rows(experiment: Experiment) -> list[tuple]:
    """(id, uuid text, trial_id, steps, metric, size) of every candidate, ids descending.

    On PostgreSQL the uuid is cast to text in SQL: building 100k ``uuid.UUID`` objects only
    to print them again costs more than the rest of the query.
    """
    uuid = Cast("uuid", CharField()) if connection.vendor == "postgresql" else F("uuid")
    rows = (
        candidates(experiment)
        .annotate(uuid_text=uuid)
        .order_by("-id")
        .values_list(
            "id", "uuid_text", "trial_id", "steps_completed", "validation_metric", "size_bytes"
        )
    )
    if connection.vendor == "postgresql":
        return list(rows)
    return [(pk, str(u), *rest) for pk, u, *rest in rows]


def gc_preview(experiment: Experiment, policy: Policy) -> dict:
    """The gc-preview representation of DESIGN.md for ``policy`` (nothing is changed).

    Three queries (the retained set, the candidate rows, the registered ones); one pass in
    Python. A checkpoint kept because it is pinned carries ``reason``: "registered as NAME
    vN" or "protected"; every other row has ``reason`` null.
    """
    kept = retained(experiment, policy)
    rows = candidate_rows(experiment)
    reasons = keep_reasons(experiment)
    retained_ids, deleted_ids, checkpoints = [], [], []
    reclaimed = 0
    for pk, uuid, trial_id, steps, metric, size in rows:
        keep = pk in kept
        if keep:
            retained_ids.append(pk)
        else:
            deleted_ids.append(pk)
            reclaimed += size
        checkpoints.append(
            {
                "id": pk,
                "uuid": uuid,
                "trial_id": trial_id,
                "steps_completed": steps,
                "validation_metric": metric,
                "size_bytes": size,
                "keep": keep,
                "reason": reasons.get(pk),
            }
        )
    return {
        "policy": policy.as_dict(),
        "retained_ids": retained_ids,
        "deleted_ids": deleted_ids,
        "reclaimed_bytes": reclaimed,
        "metric_name": experiment.searcher_metric,
        "checkpoints": checkpoints,
    }
