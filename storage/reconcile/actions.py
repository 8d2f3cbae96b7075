"""Starting scans and orphan deletions, and the page/API actions on single scan items.

``start_scan`` and ``start_deletion`` create the run's row and enqueue its task on commit
(``storage.reconcile.tasks``), retiring a dead run of the same storage or scan first
(``ckptweb.jobs.retire_stale``). The item actions — import an orphan as a checkpoint
(``experiments.imports``), mark a missing checkpoint DELETED, re-sync a drifted
checkpoint's resources — re-check storage first, change the checkpoint with a
compare-and-set on its state, and raise ActionRefused (a 409) with the reason otherwise.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from ckptweb import jobs
from ckptweb.jobs import RUN_ACTIVE_STATES, RunState
from ckptweb.lib.errors import Conflict
from experiments import summary
from experiments.choices import CheckpointState
from experiments.imports import ImportSkip, import_directory
from experiments.models import Checkpoint
from storage.backends import get_backend
from storage.backends.base import StorageError
from storage.models import StorageConfig
from storage.reconcile.choices import DELETABLE_RESOLUTIONS, ScanItemKind, ScanItemResolution
from storage.reconcile.models import OrphanDeletion, ScanItem, StorageScan
from storage.reconcile.orphans import deletable_orphans, unclaimed
from storage.reconcile.scan import grace_seconds
from storage.reconcile.tasks import delete_orphans, run_scan


class ActionRefused(Conflict):
    """An action cannot be done now; the message says why (shown to the user, a 409)."""


def start_scan(storage: StorageConfig, user=None) -> tuple[StorageScan, bool]:
    """A new PENDING scan of ``storage`` enqueued on commit, or the one already active.

    Returns ``(scan, created)``. A RUNNING scan whose heartbeat stopped is retired first.
    """
    with transaction.atomic():
        StorageConfig.objects.select_for_update().filter(pk=storage.pk).exists()
        jobs.retire_stale(StorageScan.objects.filter(storage=storage), stale_seconds())
        active = storage.scans.filter(state__in=RUN_ACTIVE_STATES).order_by("-id").first()
        if active is not None:
            return active, False
        scan = StorageScan.objects.create(
            storage=storage, requested_by=_user(user), grace_seconds=grace_seconds()
        )
        transaction.on_commit(lambda: run_scan.delay(scan.pk))
    return scan, True


def stale_seconds() -> int:
    """Heartbeat age after which a RUNNING scan or deletion is taken for dead."""
    return settings.CKPTWEB_SCAN_STALE_SECONDS


def _user(user):
    """``user`` when it is a saved user, else None (anonymous, CLI without a user)."""
    return user if getattr(user, "pk", None) else None


def start_deletion(scan: StorageScan, user=None) -> OrphanDeletion:
    """Claim the scan's deletable orphans for a new deletion, enqueued on commit.

    Raises ActionRefused when the scan has not succeeded or nothing is left to delete.
    """
    if scan.state != RunState.SUCCEEDED:
        raise ActionRefused("Only a finished, successful scan's orphans can be deleted.")
    with transaction.atomic():
        StorageScan.objects.select_for_update().filter(pk=scan.pk).exists()
        jobs.retire_stale(OrphanDeletion.objects.filter(scan=scan), stale_seconds())
        deletion = OrphanDeletion.objects.create(scan=scan, requested_by=_user(user))
        ids = list(deletable_orphans(scan).values_list("pk", flat=True))
        claimed = (
            ScanItem.objects.filter(pk__in=ids, resolution__in=DELETABLE_RESOLUTIONS)
            .filter(unclaimed())
            .update(deletion=deletion, resolution=ScanItemResolution.OPEN, resolution_note="")
        )
        if not claimed:
            raise ActionRefused("There are no orphans left to delete in this scan.")
        OrphanDeletion.objects.filter(pk=deletion.pk).update(total=claimed)
        deletion.total = claimed
        transaction.on_commit(lambda: delete_orphans.delay(deletion.pk))
    return deletion


# --- actions on single items ----------------------------------------------------------------


def _open_item(item: ScanItem, kind: str) -> None:
    if item.kind != kind:
        raise ActionRefused(f"This action applies to {kind.lower()} items only.")
    if item.resolution not in DELETABLE_RESOLUTIONS or (
        item.deletion_id and item.deletion.state in RUN_ACTIVE_STATES
    ):
        raise ActionRefused(f"This item is already {item.get_resolution_display().lower()}.")


def _resolve(item: ScanItem, resolution: str, note: str = "", **fields) -> None:
    ScanItem.objects.filter(pk=item.pk).update(
        resolution=resolution, resolution_note=note, **fields
    )
    item.resolution, item.resolution_note = resolution, note
    for name, value in fields.items():
        setattr(item, name, value)


def import_orphan(item: ScanItem, experiment, trial=None) -> Checkpoint:
    """Register an orphan directory as a checkpoint of ``experiment`` (from metadata.json).

    ``metadata.json`` must hold ``steps_completed``; its ``trial_id``, else ``trial``, else
    the experiment's "imported" trial is used. Raises ActionRefused with the reason.
    """
    _open_item(item, ScanItemKind.ORPHANED)
    storage = item.scan.storage
    if experiment.storage_id != storage.pk:
        raise ActionRefused(f"Experiment {experiment.pk} does not store checkpoints here.")
    if trial is not None and trial.experiment_id != experiment.pk:
        raise ActionRefused(f"Trial {trial.pk} is not a trial of experiment {experiment.pk}.")
    try:
        checkpoint = import_directory(get_backend(storage), experiment, trial, str(item.uuid))
    except ImportSkip as exc:
        raise ActionRefused(f"Cannot import: {exc}.") from None
    except StorageError as exc:
        raise ActionRefused(storage.scrub(f"Cannot import: {exc}")) from None
    _resolve(item, ScanItemResolution.IMPORTED, checkpoint_id=checkpoint.pk)
    return checkpoint


def mark_missing_deleted(item: ScanItem) -> None:
    """Mark a missing checkpoint DELETED, after checking again that its files are absent."""
    checkpoint, files = _stored_files(item, ScanItemKind.MISSING, "check")
    if files:
        raise ActionRefused(f"{len(files)} file(s) of this checkpoint are on storage now.")
    with transaction.atomic():
        if not Checkpoint.objects.filter(pk=checkpoint.pk, state=CheckpointState.COMPLETED).update(
            state=CheckpointState.DELETED
        ):
            raise ActionRefused("The checkpoint is no longer COMPLETED.")
        size = checkpoint.size_bytes  # a COMPLETED row's size: only a resync changes it
        summary.add(
            checkpoint.experiment_id,
            live=-1,
            deleted=1,
            live_bytes=-size,
            candidates=-1,
            candidate_bytes=-size,
        )
    _resolve(item, ScanItemResolution.MARKED_DELETED)


def resync_resources(item: ScanItem) -> dict[str, int]:
    """Replace a drifted checkpoint's resources and size with what storage holds now."""
    checkpoint, files = _stored_files(item, ScanItemKind.DRIFTED, "list")
    if not files:
        raise ActionRefused("The checkpoint has no files on storage now; mark it deleted instead.")
    resources = {stored.path: stored.size for stored in files}
    size = sum(resources.values())
    with transaction.atomic():
        # Compare-and-set on the size read too, so the summary's delta is the row's.
        if not Checkpoint.objects.filter(
            pk=checkpoint.pk, state=CheckpointState.COMPLETED, size_bytes=checkpoint.size_bytes
        ).update(resources=resources, size_bytes=size):
            raise ActionRefused("The checkpoint is no longer COMPLETED.")
        change = size - checkpoint.size_bytes
        summary.add(checkpoint.experiment_id, live_bytes=change, candidate_bytes=change)
    _resolve(item, ScanItemResolution.RESYNCED)
    return resources


def _stored_files(item: ScanItem, kind: str, verb: str) -> tuple[Checkpoint, list]:
    """The open ``kind`` item's checkpoint and the files storage holds for it now."""
    _open_item(item, kind)
    checkpoint = Checkpoint.objects.filter(pk=item.checkpoint_id).first()
    if checkpoint is None:
        raise ActionRefused("The checkpoint no longer exists.")
    storage = item.scan.storage
    try:
        return checkpoint, get_backend(storage).list_files(str(checkpoint.uuid))
    except StorageError as exc:
        raise ActionRefused(storage.scrub(f"Cannot {verb} storage: {exc}")) from None


def mark_all_missing_deleted(scan: StorageScan) -> tuple[int, list[str]]:
    """``mark_missing_deleted`` for every open missing item; returns (done, refusals)."""
    done, refusals = 0, []
    items = scan.items.filter(kind=ScanItemKind.MISSING, resolution=ScanItemResolution.OPEN)
    for item in items.select_related("scan__storage").order_by("id").iterator():
        try:
            mark_missing_deleted(item)
            done += 1
        except ActionRefused as exc:
            refusals.append(f"{item.uuid}: {exc}")
    return done, refusals


def latest_scan(storage: StorageConfig) -> StorageScan | None:
    """The storage's most recent scan, or None."""
    return storage.scans.order_by("-id").first()
