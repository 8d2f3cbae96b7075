"""Recording a deleted batch of a GC run (``experiments.gc.execute``): states, counts, bytes.

``record_batch`` issues a constant number of statements per batch, whatever its size: the
GC worker's bottleneck was one compare-and-set UPDATE per checkpoint. Its ``BatchOutcome``
says what actually changed, for whatever keeps totals beside the run's own counters.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db import transaction
from django.db.models import Case, TextField, Value, When
from django.utils import timezone

from ckptweb import jobs
from ckptweb.lib.db import add_bytes
from experiments import summary
from experiments.choices import CheckpointState
from experiments.gc.globs import remaining_files
from experiments.models import Checkpoint, GCRun

logger = logging.getLogger(__name__)


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


def _outcomes(
    held: dict[int, tuple[str, int]],
    batch: dict[int, Checkpoint],
    errors: dict[str, str],
    gone: dict[str, set[str]] | None,
) -> dict[tuple, list[tuple[int, str, int]]]:
    """Group the held checkpoints by the UPDATE they need: ``{(state, changes): [(id, error,
    reclaimed)]}``; rows of a group differ only in their error text."""
    groups: dict[tuple, list[tuple[int, str, int]]] = defaultdict(list)
    for pk, (uuid, size_bytes) in held.items():
        error = errors.get(uuid)
        changes, reclaimed = {}, size_bytes
        if gone is not None:
            changes, reclaimed = remaining_files(batch[pk], gone.get(uuid, ()))
        if error is None:
            state = CheckpointState.DELETED
            if changes.get("resources"):
                state = CheckpointState.PARTIALLY_DELETED
        else:
            error = error[: jobs.MAX_ERROR_CHARS]
            state = CheckpointState.ERROR
            if gone is not None and gone.get(uuid):
                # Some files went: the sweep cannot retry a FILES deletion (it applies
                # the policy, not the globs), and ERROR would later reconcile to COMPLETED.
                state = CheckpointState.PARTIALLY_DELETED
            if gone is None:
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
    gone: dict[str, set[str]] | None = None,
) -> BatchOutcome:
    """Mark the checkpoints of a deleted batch DELETED or ERROR and update the run's progress.

    A constant number of statements per batch: with the run row locked, one SELECT … FOR
    UPDATE reads which of the batch this run still holds (``state=DELETING, gc_run=run``;
    a checkpoint another run adopted, or a user changed, is neither changed nor counted),
    then one compare-and-set UPDATE per outcome (DELETED; ERROR, its texts in a CASE),
    restricted to those ids and re-checking ``state`` and ``gc_run``. ``gone`` (FILES runs)
    maps a uuid to the paths the storage confirmed deleted: they leave ``resources`` in the
    same UPDATE (rows are grouped by equal changes), and a checkpoint with files left
    becomes PARTIALLY_DELETED rather than DELETED. Returns what changed (``BatchOutcome``).
    """
    batch = {checkpoint.pk: checkpoint for checkpoint in batch}
    with transaction.atomic():
        run = GCRun.objects.select_for_update(no_key=True).get(pk=run_id)
        outcome = BatchOutcome(run.experiment_id)
        went = partly = partly_bytes = 0  # rows now DELETED / PARTIALLY_DELETED, for the summary
        if batch:
            mine = Checkpoint.objects.filter(gc_run_id=run_id, state=CheckpointState.DELETING)
            # The rows stay locked until commit, so each UPDATE changes exactly these.
            held = {
                pk: (str(uuid), size_bytes)
                for pk, uuid, size_bytes in mine.filter(pk__in=list(batch))
                .select_for_update(no_key=True)
                .order_by("pk")
                .values_list("pk", "uuid", "size_bytes")
            }
            for (state, failed, changes), rows in _outcomes(held, batch, errors, gone).items():
                ids = [pk for pk, _, _ in rows]
                changed = mine.filter(pk__in=ids).update(
                    state=state, error=_error_text(rows), **json.loads(changes)
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
