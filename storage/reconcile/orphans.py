"""Deleting a scan's orphaned directories, safely against checkpoints registered since.

An **orphan deletion** (``execute_deletion``) works on the orphans ``actions.start_deletion``
claimed for it (a compare-and-set on each item) and, batch by batch, re-checks each one
just before deleting: its directory must still be older than the grace period, then its
UUID still unknown or DELETED and unpinned (``experiments.gc.kernel``, the one deletion
rule) — the database check comes last, right before the delete, to
keep the window small. Otherwise the item is kept. So a checkpoint registered after the
scan, even under an orphan's UUID, never loses its files. Every outcome is saved with a
compare-and-set on the item's claim. The run's lifecycle (claim, beat, finish, retirement)
is ``ckptweb.jobs``'.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ckptweb import jobs
from ckptweb.jobs import RUN_TERMINAL_STATES, RunState
from ckptweb.lib.db import ByteSum, add_bytes
from experiments.gc import kernel
from storage.backends import get_backend
from storage.backends.base import StorageError, TransientStorageError
from storage.reconcile.choices import DELETABLE_RESOLUTIONS, ScanItemKind, ScanItemResolution
from storage.reconcile.models import OrphanDeletion, ScanItem, StorageScan
from storage.reconcile.scan import grace_seconds

#: Orphans re-checked and deleted per backend call.
DELETE_BATCH = 50


def deletable_orphans(scan: StorageScan):
    """The scan's orphans a deletion may take: open or failed, not held by a live run."""
    return scan.items.filter(
        kind=ScanItemKind.ORPHANED, resolution__in=DELETABLE_RESOLUTIONS
    ).filter(unclaimed())


def unclaimed() -> Q:
    """Items no live deletion holds."""
    return Q(deletion__isnull=True) | Q(deletion__state__in=RUN_TERMINAL_STATES)


def deletion_preview(scan: StorageScan, limit: int = 100) -> dict:
    """What "delete orphans" would remove now: count, bytes and the first ``limit`` items."""
    queryset = deletable_orphans(scan).order_by("id")
    totals = queryset.aggregate(bytes=ByteSum("bytes"))
    return {
        "count": queryset.count(),
        "bytes": int(totals["bytes"] or 0),
        "items": list(queryset[:limit]),
        "grace_seconds": grace_seconds(),
    }


def execute_deletion(deletion_id: int, final_attempt: bool = True) -> OrphanDeletion | None:
    """Delete (or resume deleting) the orphans a deletion claimed; None if nothing to do."""

    def work(deletion: OrphanDeletion) -> str:
        backend = get_backend(deletion.scan.storage)
        while batch := _next_batch(deletion_id):
            delete_batch(deletion, backend, batch, final_attempt)
        deletion.refresh_from_db(fields=["failed"])
        return RunState.FAILED if deletion.failed else RunState.SUCCEEDED

    deletions = OrphanDeletion.objects.select_related("scan__storage")
    return jobs.execute(deletions, deletion_id, work, final_attempt)


def _next_batch(deletion_id: int) -> list[ScanItem]:
    """The next items the deletion holds and has not decided yet; RunLost if retired."""
    jobs.beat(OrphanDeletion, deletion_id)
    return list(
        ScanItem.objects.filter(deletion_id=deletion_id, resolution=ScanItemResolution.OPEN)
        .order_by("id")
        .only("id", "uuid")[:DELETE_BATCH]
    )


def delete_batch(deletion: OrphanDeletion, backend, batch: list[ScanItem], final_attempt: bool):
    """Re-check each orphan of ``batch`` (age, then database), delete the rest, record all."""
    cutoff = time.time() - grace_seconds()
    outcomes: dict[int, tuple[str, str, int]] = {}  # item id -> (resolution, note, bytes)
    sizes: dict[str, tuple[ScanItem, int]] = {}
    for item in batch:
        uuid = str(item.uuid)
        files = backend.list_files(uuid)
        newest = max((f.modified for f in files if f.modified is not None), default=None)
        if files and (newest is None or newest > cutoff):
            outcomes[item.pk] = (ScanItemResolution.KEPT, "written to within the grace period", 0)
        else:
            sizes[uuid] = (item, sum(f.size for f in files))
    # The deletion kernel comes last, right before the delete, to keep the window small.
    for uuid, note in kernel.refusals(list(sizes)).items():
        item, _size = sizes.pop(uuid)
        outcomes[item.pk] = (ScanItemResolution.KEPT, note, 0)
    errors: dict[str, str] = {}
    if sizes:
        try:
            errors = backend.delete_checkpoints(list(sizes)).errors
            if errors:
                backend.check_connection()  # the storage being down is worth a retry
        except TransientStorageError as exc:
            if not final_attempt:
                raise
            errors = dict.fromkeys(sizes, str(exc))
        except StorageError as exc:
            errors = dict.fromkeys(sizes, str(exc))
    for uuid, (item, size) in sizes.items():
        if uuid in errors:
            outcomes[item.pk] = (ScanItemResolution.DELETE_FAILED, deletion.scrub(errors[uuid]), 0)
        else:
            outcomes[item.pk] = (ScanItemResolution.FILES_DELETED, "", size)
    record_outcomes(deletion.pk, batch, outcomes)


def record_outcomes(deletion_id: int, batch, outcomes: dict[int, tuple[str, str, int]]) -> None:
    """Save each item's outcome (compare-and-set on the claim) and the deletion's progress."""
    with transaction.atomic():
        deletion = OrphanDeletion.objects.select_for_update().get(pk=deletion_id)
        for item in batch:
            resolution, note, size = outcomes[item.pk]
            note = note[: jobs.MAX_ERROR_CHARS]
            if not ScanItem.objects.filter(
                pk=item.pk, deletion_id=deletion_id, resolution=ScanItemResolution.OPEN
            ).update(resolution=resolution, resolution_note=note):
                continue
            if resolution == ScanItemResolution.FILES_DELETED:
                deletion.deleted += 1
                deletion.reclaimed_bytes = add_bytes(deletion.reclaimed_bytes, size)
            elif resolution == ScanItemResolution.KEPT:
                deletion.skipped += 1
            else:
                deletion.failed += 1
                deletion.errors = [*deletion.errors, {"uuid": str(item.uuid), "error": note}]
        deletion.heartbeat = timezone.now()
        deletion.save(
            update_fields=["deleted", "skipped", "failed", "reclaimed_bytes", "errors", "heartbeat"]
        )
