"""Recording a deleted batch of a GC run (``experiments.gc.execute``): states, counts, bytes.

``record_batch`` issues a constant number of statements per batch, whatever its size: the
GC worker's bottleneck was one compare-and-set UPDATE per checkpoint. Its ``BatchOutcome``
says what actually changed, for whatever keeps totals beside the run's own counters.

**The truth about storage.** Where the run knows what storage holds of a checkpoint after
its deletion (``Listed``: always for a FILES run, and after any failure, when ``execute``
lists the failed checkpoints again), ``resources`` and ``size_bytes`` become that listing
in the same UPDATE, and the state follows it: DELETED when nothing is left, whatever the
error said (a DeleteObjects whose answer was lost did its work), ERROR only for files that
really stayed. Without a listing (storage unreachable) the row keeps its files.

**Bounded retries.** ``deletion_failures`` counts a checkpoint's failed deletions in a row
(reset by one that succeeds). The ``MAX_DELETION_FAILURES``-th failure prefixes its error
with ``NEEDS_ATTENTION``: the sweep stops retrying it (``experiments.gc.sweep``), and the
experiment and storage pages list it. An explicit run (a policy saved, a delete asked for)
still retries it.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.db.models import Case, F, Q, TextField, Value, When
from django.utils import timezone

from ckptweb import jobs
from ckptweb.lib.db import add_bytes
from ckptweb.lib.paths import UnsafePath
from experiments import summary
from experiments.choices import CheckpointState, GCReason
from experiments.models import Checkpoint, GCRun

logger = logging.getLogger(__name__)

#: How the error of a checkpoint that no automatic run retries begins: an admin must look.
NEEDS_ATTENTION = "needs attention: "

#: Failed deletions in a row after which the sweep leaves a checkpoint to an admin.
MAX_DELETION_FAILURES = 5


def needs_attention() -> Q:
    """The checkpoints no automatic run retries, for an admin to look at (the sweep skips
    them; the experiment and storage pages list them): ERROR with a ``NEEDS_ATTENTION``
    error (files that cannot be checked, or ``MAX_DELETION_FAILURES`` failures in a row)."""
    return Q(state=CheckpointState.ERROR, error__startswith=NEEDS_ATTENTION)


def attention_list(checkpoints, shown: int) -> tuple[list[Checkpoint], int]:
    """Up to ``shown`` of ``checkpoints`` (a queryset) that need attention, oldest first,
    and how many there are: one query, a second only when there are more than ``shown``."""
    rows = list(
        checkpoints.filter(needs_attention())
        .select_related("experiment__storage")
        .only("id", "uuid", "error", "experiment__name", "experiment__storage__name")
        .order_by("id")[: shown + 1]
    )
    count = checkpoints.filter(needs_attention()).count() if len(rows) > shown else len(rows)
    return rows[:shown], count


@dataclass(frozen=True)
class Listed:
    """What storage holds of one checkpoint once a batch was deleted: ``files`` (path ->
    bytes), and whether this run removed some of its files (``removed``)."""

    files: dict[str, int] = field(default_factory=dict)
    removed: bool = False


@dataclass(frozen=True)
class BatchOutcome:
    """What one ``record_batch`` call changed: only the checkpoints the run still held.

    ``deleted`` became DELETED or (FILES runs, files left) PARTIALLY_DELETED; ``failed``
    became ERROR (or PARTIALLY_DELETED when some of a FILES run's files went).
    """

    experiment_id: int
    deleted: int = 0
    failed: int = 0
    reclaimed_bytes: int = 0


def stored_files(backend, checkpoint_uuid: str) -> dict[str, int]:
    """What storage lists under the checkpoint (path -> bytes), in one listing.

    UnsafePath when part of it cannot be checked (``StorageBackend.list_directory``'s
    ``unsafe``: a symlink leading out of the checkpoint, an unsafe key): a file missing
    from such a listing may well be there, so no state may be derived from it.
    """
    listed = backend.list_directory(checkpoint_uuid)
    if listed.unsafe:
        raise UnsafePath(
            f"{listed.unsafe} of its entries cannot be checked (a symlink leading out of "
            "the checkpoint, or an unsafe name); nothing is deleted through them"
        )
    return {stored.path: stored.size for stored in listed.files}


def failure_text(error: str, failures: int) -> str:
    """The error recorded for a checkpoint's ``failures``-th failed deletion in a row."""
    if failures >= MAX_DELETION_FAILURES and not error.startswith(NEEDS_ATTENTION):
        error = (
            f"{NEEDS_ATTENTION}its deletion failed {failures} times in a row, so the sweep "
            f"no longer retries it: {error}"
        )
    return error[: jobs.MAX_ERROR_CHARS]


def _outcomes(
    held: dict[int, tuple[str, int, int]],
    errors: dict[str, str],
    listed: dict[str, Listed],
    files_run: bool,
) -> dict[tuple, list[tuple[int, str, int]]]:
    """Group the held checkpoints by the UPDATE they need: ``{(state, failed, changes):
    [(id, error, reclaimed)]}``; rows of a group differ only in their error text."""
    groups: dict[tuple, list[tuple[int, str, int]]] = defaultdict(list)
    for pk, (uuid, size_bytes, failures) in held.items():
        error = errors.get(uuid)
        truth = listed.get(uuid)
        changes, reclaimed = {}, size_bytes
        if truth is None and error is None:
            truth = Listed()  # storage confirmed every file gone
        if truth is not None:
            left = sum(truth.files.values())
            changes = {"resources": truth.files, "size_bytes": left}
            reclaimed = max(size_bytes - left, 0)
        if error is None:
            state = CheckpointState.DELETED
            if changes.get("resources"):
                state = CheckpointState.PARTIALLY_DELETED
        else:
            error = failure_text(error, failures + 1)
            state = CheckpointState.ERROR
            if files_run and truth is not None and truth.removed:
                # Some files went: the sweep cannot retry a FILES deletion (it applies
                # the policy, not the globs), and ERROR would later reconcile to COMPLETED.
                state = CheckpointState.PARTIALLY_DELETED
            if truth is None:
                reclaimed = 0
        key = (state, error is not None, json.dumps(changes, sort_keys=True))
        groups[key].append((pk, error or "", reclaimed))
    return groups


def _error_text(rows: list[tuple[int, str, int]]):
    """The ``error`` value of a group's UPDATE: one text, or a CASE on the id."""
    texts = {error for _, error, _ in rows}
    if len(texts) == 1:
        return texts.pop()
    whens = [When(pk=pk, then=Value(error)) for pk, error, _ in rows]
    return Case(*whens, default=Value(""), output_field=TextField())


def record_batch(
    run_id: int,
    batch: Iterable[Checkpoint],
    errors: dict[str, str],
    listed: dict[str, Listed] | None = None,
) -> BatchOutcome:
    """Mark the checkpoints of a deleted batch DELETED or ERROR and update the run's progress.

    A constant number of statements per batch: with the run row locked, one SELECT … FOR
    UPDATE reads which of the batch this run still holds (``state=DELETING, gc_run=run``;
    a checkpoint another run adopted, or a user changed, is neither changed nor counted),
    then one compare-and-set UPDATE per outcome (DELETED; ERROR, its texts in a CASE),
    restricted to those ids and re-checking ``state`` and ``gc_run``. ``listed`` maps a
    uuid to what storage holds of it now (module docstring): ``resources`` and
    ``size_bytes`` become that in the same UPDATE (rows are grouped by equal changes), and
    a checkpoint with files left and no error becomes PARTIALLY_DELETED rather than
    DELETED. Returns what changed (``BatchOutcome``).
    """
    batch = {checkpoint.pk: checkpoint for checkpoint in batch}
    listed = listed or {}
    with transaction.atomic():
        run = GCRun.objects.select_for_update(no_key=True).get(pk=run_id)
        outcome = BatchOutcome(run.experiment_id)
        went = partly = partly_bytes = 0  # rows now DELETED / PARTIALLY_DELETED, for the summary
        if batch:
            mine = Checkpoint.objects.filter(gc_run_id=run_id, state=CheckpointState.DELETING)
            # The rows stay locked until commit, so each UPDATE changes exactly these.
            held = {
                pk: (str(uuid), size_bytes, failures)
                for pk, uuid, size_bytes, failures in mine.filter(pk__in=list(batch))
                .select_for_update(no_key=True)
                .order_by("pk")
                .values_list("pk", "uuid", "size_bytes", "deletion_failures")
            }
            files_run = run.reason == GCReason.FILES
            outcomes = _outcomes(held, errors, listed, files_run)
            for (state, failed, changes), rows in outcomes.items():
                ids = [pk for pk, _, _ in rows]
                changed = mine.filter(pk__in=ids).update(
                    state=state,
                    error=_error_text(rows),
                    deletion_failures=F("deletion_failures") + 1 if failed else 0,
                    **json.loads(changes),
                )
                if changed != len(rows):
                    # Not on PostgreSQL (the rows are locked); SQLite does not lock on
                    # SELECT, so count only the rows that now carry this run's outcome.
                    logger.warning("GC run %s: %s of %s rows changed", run_id, changed, len(rows))
                    now = set(
                        Checkpoint.objects.filter(
                            pk__in=ids, gc_run_id=run_id, state=state
                        ).values_list("pk", flat=True)
                    )
                    rows = [row for row in rows if row[0] in now]
                freed = sum(reclaimed for _, _, reclaimed in rows)
                went += len(rows) if state == CheckpointState.DELETED else 0
                if state == CheckpointState.PARTIALLY_DELETED:
                    partly += len(rows)
                    left = json.loads(changes).get("size_bytes")
                    partly_bytes += sum(held[pk][1] if left is None else left for pk, *_ in rows)
                outcome = replace(
                    outcome,
                    deleted=outcome.deleted + (0 if failed else len(rows)),
                    failed=outcome.failed + (len(rows) if failed else 0),
                    reclaimed_bytes=add_bytes(outcome.reclaimed_bytes, freed),
                )
                if failed:
                    run.errors = [
                        *run.errors,
                        *({"checkpoint": held[pk][0], "error": error} for pk, error, _ in rows),
                    ]
        run.deleted += outcome.deleted
        run.failed += outcome.failed
        run.reclaimed_bytes = add_bytes(run.reclaimed_bytes, outcome.reclaimed_bytes)
        run.heartbeat = timezone.now()
        run.save(update_fields=["deleted", "failed", "reclaimed_bytes", "errors", "heartbeat"])
        # DELETING left the candidates when claimed: PARTIALLY_DELETED rows rejoin them.
        summary.add(
            run.experiment_id,
            live=-went,
            deleted=went,
            live_bytes=-outcome.reclaimed_bytes,
            candidates=partly,
            candidate_bytes=partly_bytes,
        )
    return outcome
