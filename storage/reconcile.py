"""Storage reconciliation: compare what a storage holds with what the database says.

A **scan** (``execute_scan``) streams the storage's ``<uuid>/`` directories in name order
(``storage.backends.listing``) and merge-joins them with this storage's checkpoints read
from the database in UUID order (keyset pages), so neither side is ever held whole:

* *orphaned* — a directory whose UUID is no known checkpoint, or whose checkpoint is
  DELETED, and that nothing wrote to within the grace period
  (``settings.CKPTWEB_SCAN_GRACE_SECONDS``, default one hour);
* *missing* — a COMPLETED checkpoint that recorded files but has none on storage
  (checkpoints reported after the scan started are left for the next scan);
* *drifted* — a COMPLETED checkpoint whose files differ from its recorded ``resources``
  (size changed, file missing, extra file).

A directory named like no canonical UUID, or holding a checkpoint of another storage
(two configs on one location), is counted as skipped and never touched.

An **orphan deletion** (``execute_deletion``) claims a scan's orphans with a
compare-and-set and, batch by batch, re-checks each one just before deleting: the UUID must
still be unknown or DELETED and the directory still older than the grace period, else it is
kept. So a checkpoint registered after the scan, even under an orphan's UUID, never loses
its files. Both runs keep progress and a heartbeat in their row, like GC runs, and raise
TransientStorageError for their Celery task to retry.

The remaining functions are the page/API actions on single items: import an orphan as a
checkpoint, mark a missing checkpoint DELETED, re-sync a checkpoint's resources.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ckptweb.limits import MAX_FIELD_BYTES, ByteSum, InvalidInput, add_bytes, parse_json
from experiments.choices import CheckpointState
from experiments.models import Checkpoint
from storage.backends import get_backend
from storage.backends.base import StorageError, TransientStorageError, check_uuid
from storage.backends.listing import ListedDirectory, iter_directories
from storage.models import (
    SCAN_ACTIVE_STATES,
    SCAN_TERMINAL_STATES,
    OrphanDeletion,
    ScanItem,
    ScanItemKind,
    ScanItemResolution,
    ScanState,
    StorageConfig,
    StorageScan,
)
from storage.paths import UnsafePath

logger = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 3600
#: Directories per database lookup and per insert of scan items.
SCAN_BATCH = 500
#: Checkpoints read per keyset page of the merge-join.
KNOWN_PAGE = 1000
#: Orphans re-checked and deleted per backend call.
DELETE_BATCH = 50
#: Longest lists of paths kept in a drift item's details.
DETAIL_LIMIT = 100
METADATA_FILE = "metadata.json"
MAX_ERROR_CHARS = 2000
#: Resolutions an orphan may still be deleted from.
DELETABLE = (ScanItemResolution.OPEN, ScanItemResolution.DELETE_FAILED)


def grace_seconds() -> int:
    """Age a directory needs before it can be called orphaned (default one hour)."""
    return max(0, int(getattr(settings, "CKPTWEB_SCAN_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)))


def stale_seconds() -> int:
    """Heartbeat age after which a RUNNING scan or deletion is taken for dead."""
    return int(getattr(settings, "CKPTWEB_SCAN_STALE_SECONDS", 600))


class RunLost(Exception):
    """The scan or deletion is no longer RUNNING (retired as stale): stop working on it."""


class ActionRefused(Exception):
    """An item action cannot be done; the message says why (shown to the user)."""


# --- starting -------------------------------------------------------------------------------


def start_scan(storage: StorageConfig, user=None) -> tuple[StorageScan, bool]:
    """A new PENDING scan of ``storage`` enqueued on commit, or the one already active.

    Returns ``(scan, created)``. A RUNNING scan whose heartbeat stopped is retired first.
    """
    with transaction.atomic():
        StorageConfig.objects.select_for_update().filter(pk=storage.pk).exists()
        retire_stale(StorageScan.objects.filter(storage=storage))
        active = storage.scans.filter(state__in=SCAN_ACTIVE_STATES).order_by("-id").first()
        if active is not None:
            return active, False
        scan = StorageScan.objects.create(
            storage=storage, requested_by=_user(user), grace_seconds=grace_seconds()
        )
        transaction.on_commit(lambda: _enqueue("run_scan", scan.pk))
    return scan, True


def retire_stale(queryset) -> int:
    """Mark RUNNING rows of ``queryset`` whose heartbeat stopped FAILED (compare-and-set)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds())
    return queryset.filter(state=ScanState.RUNNING, heartbeat__lt=cutoff).update(
        state=ScanState.FAILED, finished_at=now, error="The worker stopped reporting progress."
    )


def _user(user):
    """``user`` when it is a saved user, else None (anonymous, CLI without a user)."""
    return user if getattr(user, "pk", None) else None


def _enqueue(task_name: str, row_id: int) -> None:
    """Send a storage task for ``row_id`` (called on commit)."""
    from storage import tasks

    getattr(tasks, task_name).delay(row_id)


# --- the scan -------------------------------------------------------------------------------


def execute_scan(scan_id: int, final_attempt: bool = True) -> StorageScan | None:
    """Run (or restart) scan ``scan_id``; None when it is missing or already finished.

    Items of an earlier attempt are discarded first, so a retry starts clean. Raises
    TransientStorageError for the caller to retry unless ``final_attempt``.
    """
    now = timezone.now()
    if not StorageScan.objects.filter(pk=scan_id, state__in=SCAN_ACTIVE_STATES).update(
        state=ScanState.RUNNING, heartbeat=now, started_at=now, error=""
    ):
        return None
    scan = StorageScan.objects.select_related("storage").get(pk=scan_id)
    scan.items.all().delete()
    try:
        Scanner(scan, get_backend(scan.storage), started=now).run()
    except RunLost:
        logger.info("Scan %s was retired; stopping", scan_id)
        return StorageScan.objects.get(pk=scan_id)
    except TransientStorageError as exc:
        if not final_attempt:
            StorageScan.objects.filter(pk=scan_id, state=ScanState.RUNNING).update(
                heartbeat=timezone.now()
            )
            raise
        _end(StorageScan, scan_id, ScanState.FAILED, scan.storage.scrub(str(exc)))
    except StorageError as exc:
        _end(StorageScan, scan_id, ScanState.FAILED, scan.storage.scrub(str(exc)))
    except Exception as exc:  # a bug must not leave the scan RUNNING forever
        logger.exception("Scan %s failed", scan_id)
        _end(StorageScan, scan_id, ScanState.FAILED, scan.storage.scrub(f"{type(exc).__name__}"))
    else:
        _end(StorageScan, scan_id, ScanState.SUCCEEDED)
    return StorageScan.objects.get(pk=scan_id)


def _end(model, row_id: int, state: str, error: str = "") -> None:
    """Finish a RUNNING scan or deletion (compare-and-set)."""
    now = timezone.now()
    model.objects.filter(pk=row_id, state=ScanState.RUNNING).update(
        state=state, finished_at=now, heartbeat=now, error=error[:MAX_ERROR_CHARS]
    )


@dataclass
class KnownCheckpoint:
    """The columns of a checkpoint a scan needs."""

    id: int
    uuid: str
    state: str
    resources: dict
    report_time: datetime


@dataclass
class UnknownDirectory:
    """A directory whose UUID the merge-join did not find on this storage (yet)."""

    uuid: str
    bytes: int
    file_count: int
    newest_modified: float | None
    metadata_size: int | None


COUNTERS = (
    "directories",
    "objects_listed",
    "bytes_listed",
    "orphaned",
    "orphaned_bytes",
    "missing",
    "missing_bytes",
    "drifted",
    "young",
    "skipped",
)


class Scanner:
    """One attempt of a scan: the merge-join, the classification and the progress writes."""

    def __init__(self, scan: StorageScan, backend, started: datetime):
        self.scan = scan
        self.backend = backend
        self.started = started
        self.cutoff = started.timestamp() - scan.grace_seconds
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.unknown: list[UnknownDirectory] = []
        self.items: list[ScanItem] = []
        self.last_progress = time.monotonic()

    def run(self) -> None:
        """Walk the listing and the known checkpoints side by side, then flush."""
        known = self.known_checkpoints()
        row = next(known, None)
        for listed in iter_directories(self.backend):
            self.count_listing(listed)
            try:
                uuid = check_uuid(listed.name)
            except UnsafePath:
                uuid = None
            if uuid != listed.name:  # backends address directories by the lowercase name
                self.counts["skipped"] += 1
                continue
            while row is not None and row.uuid < uuid:
                self.check_absent(row)
                row = next(known, None)
            if row is not None and row.uuid == uuid:
                self.classify_known(row, listed)
                row = next(known, None)
            else:
                self.defer_unknown(uuid, listed)
            self.maybe_flush()
        while row is not None:
            self.check_absent(row)
            row = next(known, None)
        self.flush()

    def known_checkpoints(self) -> Iterator[KnownCheckpoint]:
        """This storage's checkpoints in UUID order, read in keyset pages."""
        queryset = Checkpoint.objects.filter(experiment__storage=self.scan.storage_id).order_by(
            "uuid"
        )
        columns = ("id", "uuid", "state", "resources", "report_time")
        last = None
        while True:
            page = queryset if last is None else queryset.filter(uuid__gt=last)
            rows = list(page.values_list(*columns)[:KNOWN_PAGE])
            for pk, uuid, state, resources, report_time in rows:
                yield KnownCheckpoint(pk, str(uuid), state, resources or {}, report_time)
            if len(rows) < KNOWN_PAGE:
                return
            last = rows[-1][1]

    def count_listing(self, listed: ListedDirectory) -> None:
        self.counts["directories"] += 1
        self.counts["objects_listed"] += len(listed.files)
        self.counts["bytes_listed"] += listed.total_bytes

    def is_young(self, newest_modified: float | None) -> bool:
        """Written to within the grace period (an unknown time counts as young)."""
        return newest_modified is None or newest_modified > self.cutoff

    # classification ---------------------------------------------------------------------

    def check_absent(self, row: KnownCheckpoint) -> None:
        """A checkpoint of this storage with no directory: missing if it recorded files."""
        if row.state != CheckpointState.COMPLETED or row.report_time >= self.started:
            return
        recorded = recorded_files(row.resources)
        if recorded:
            self.add_missing(row, recorded)

    def add_missing(self, row: KnownCheckpoint, recorded: dict) -> None:
        size = sum(recorded.values())
        self.counts["missing"] += 1
        self.counts["missing_bytes"] += size
        self.add_item(
            ScanItemKind.MISSING,
            row.uuid,
            checkpoint_id=row.id,
            bytes=size,
            file_count=len(recorded),
            details={"recorded_files": len(recorded)},
        )

    def classify_known(self, row: KnownCheckpoint, listed: ListedDirectory) -> None:
        """A directory of one of this storage's checkpoints."""
        if row.state == CheckpointState.DELETED:
            self.add_orphan(
                UnknownDirectory(
                    row.uuid,
                    listed.total_bytes,
                    len(listed.files),
                    listed.newest_modified,
                    metadata_size(listed),
                ),
                checkpoint_id=row.id,
                checkpoint_state=row.state,
            )
            return
        if row.state != CheckpointState.COMPLETED:
            return  # being deleted, or left to the GC sweep
        recorded = recorded_files(row.resources)
        if not listed.files:
            if recorded and row.report_time < self.started:
                self.add_missing(row, recorded)
            return
        drift = compare_files(recorded, listed)
        if drift:
            self.counts["drifted"] += 1
            self.add_item(
                ScanItemKind.DRIFTED,
                row.uuid,
                checkpoint_id=row.id,
                bytes=listed.total_bytes,
                file_count=len(listed.files),
                newest_modified=listed.newest_modified,
                details=drift,
            )

    def defer_unknown(self, uuid: str, listed: ListedDirectory) -> None:
        """Queue a directory for a batched lookup of its UUID among all checkpoints."""
        self.unknown.append(
            UnknownDirectory(
                uuid,
                listed.total_bytes,
                len(listed.files),
                listed.newest_modified,
                metadata_size(listed),
            )
        )
        if len(self.unknown) >= SCAN_BATCH:
            self.resolve_unknown()

    def resolve_unknown(self) -> None:
        """Orphan the deferred directories no checkpoint owns (registered meanwhile: kept)."""
        if not self.unknown:
            return
        found = {
            str(uuid): (storage_id, state)
            for uuid, storage_id, state in Checkpoint.objects.filter(
                uuid__in=[d.uuid for d in self.unknown]
            ).values_list("uuid", "experiment__storage_id", "state")
        }
        for directory in self.unknown:
            owner = found.get(directory.uuid)
            if owner is None:
                self.add_orphan(directory)
            elif owner == (self.scan.storage_id, CheckpointState.DELETED):
                self.add_orphan(directory, checkpoint_state=CheckpointState.DELETED)
            else:
                self.counts["skipped"] += 1  # another storage's, or registered meanwhile
        self.unknown = []

    def add_orphan(
        self, directory: UnknownDirectory, checkpoint_id=None, checkpoint_state=None
    ) -> None:
        """Record an orphan, unless it was written to within the grace period."""
        if self.is_young(directory.newest_modified):
            self.counts["young"] += 1
            return
        details = {"checkpoint_state": checkpoint_state}
        if directory.metadata_size is not None:
            details.update(read_metadata_summary(self.backend, directory))
        self.counts["orphaned"] += 1
        self.counts["orphaned_bytes"] += directory.bytes
        self.add_item(
            ScanItemKind.ORPHANED,
            directory.uuid,
            checkpoint_id=checkpoint_id,
            bytes=directory.bytes,
            file_count=directory.file_count,
            newest_modified=directory.newest_modified,
            details=details,
        )

    def add_item(self, kind: str, uuid: str, newest_modified=None, **fields) -> None:
        modified = None
        if newest_modified is not None:
            modified = datetime.fromtimestamp(newest_modified, tz=UTC)
        self.items.append(
            ScanItem(scan_id=self.scan.pk, kind=kind, uuid=uuid, newest_modified=modified, **fields)
        )

    # progress ---------------------------------------------------------------------------

    def maybe_flush(self) -> None:
        """Write items and counters every SCAN_BATCH items or two seconds."""
        if len(self.items) >= SCAN_BATCH or time.monotonic() - self.last_progress > 2:
            self.flush(resolve=False)

    def flush(self, resolve: bool = True) -> None:
        """Insert buffered items and save the counters; RunLost if the scan was retired."""
        if resolve:
            self.resolve_unknown()
        with transaction.atomic():
            updated = StorageScan.objects.filter(pk=self.scan.pk, state=ScanState.RUNNING).update(
                heartbeat=timezone.now(), **self.counts
            )
            if not updated:
                raise RunLost(self.scan.pk)
            ScanItem.objects.bulk_create(self.items)
        self.items = []
        self.last_progress = time.monotonic()


def recorded_files(resources: dict) -> dict[str, int]:
    """The files a checkpoint recorded (directory entries ending in ``/`` left out)."""
    return {
        path: int(size or 0)
        for path, size in (resources or {}).items()
        if isinstance(path, str) and not path.endswith("/")
    }


def compare_files(recorded: dict[str, int], listed: ListedDirectory) -> dict | None:
    """How the stored files differ from the recorded ones, or None when they match."""
    present = {stored.path: stored.size for stored in listed.files}
    changed = [
        {"path": path, "recorded": size, "actual": present[path]}
        for path, size in sorted(recorded.items())
        if path in present and present[path] != size
    ]
    missing = sorted(path for path in recorded if path not in present)
    extra = sorted(path for path in present if path not in recorded)
    if not (changed or missing or extra):
        return None
    return {
        "changed": changed[:DETAIL_LIMIT],
        "missing": missing[:DETAIL_LIMIT],
        "extra": extra[:DETAIL_LIMIT],
        "counts": {"changed": len(changed), "missing": len(missing), "extra": len(extra)},
    }


def metadata_size(listed: ListedDirectory) -> int | None:
    """Size of the directory's ``metadata.json``, None when it has none."""
    for stored in listed.files:
        if stored.path == METADATA_FILE:
            return stored.size
    return None


def read_metadata_summary(backend, directory: UnknownDirectory) -> dict:
    """What an orphan's metadata.json says about where it belongs, for the page and imports."""
    if directory.metadata_size > MAX_FIELD_BYTES:
        return {"metadata_error": "metadata.json is larger than 1 MiB"}
    try:
        reader = backend.open(directory.uuid, METADATA_FILE, 0, directory.metadata_size)
        try:
            raw = reader.read()
        finally:
            reader.close()
        metadata = parse_json(raw, "metadata.json")
    except InvalidInput as exc:
        return {"metadata_error": exc.message[:200]}
    except StorageError as exc:
        return {"metadata_error": backend.scrub(str(exc))[:200] or "unreadable"}
    if not isinstance(metadata, dict):
        return {"metadata_error": "metadata.json is not a JSON object"}
    summary = {
        key: metadata[key]
        for key in ("experiment_id", "trial_id", "steps_completed")
        if isinstance(metadata.get(key), int) and not isinstance(metadata.get(key), bool)
    }
    return {"metadata": summary}


# --- deleting orphans -----------------------------------------------------------------------


def deletable_orphans(scan: StorageScan):
    """The scan's orphans a deletion may take: open or failed, not held by a live run."""
    return scan.items.filter(kind=ScanItemKind.ORPHANED, resolution__in=DELETABLE).filter(
        Q(deletion__isnull=True) | Q(deletion__state__in=SCAN_TERMINAL_STATES)
    )


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


def start_deletion(scan: StorageScan, user=None) -> OrphanDeletion:
    """Claim the scan's deletable orphans for a new deletion, enqueued on commit.

    Raises ActionRefused when the scan has not succeeded or nothing is left to delete.
    """
    if scan.state != ScanState.SUCCEEDED:
        raise ActionRefused("Only a finished, successful scan's orphans can be deleted.")
    with transaction.atomic():
        StorageScan.objects.select_for_update().filter(pk=scan.pk).exists()
        retire_stale(OrphanDeletion.objects.filter(scan=scan))
        deletion = OrphanDeletion.objects.create(scan=scan, requested_by=_user(user))
        ids = list(deletable_orphans(scan).values_list("pk", flat=True))
        claimed = (
            ScanItem.objects.filter(pk__in=ids, resolution__in=DELETABLE)
            .filter(Q(deletion__isnull=True) | Q(deletion__state__in=SCAN_TERMINAL_STATES))
            .update(deletion=deletion, resolution=ScanItemResolution.OPEN, resolution_note="")
        )
        if not claimed:
            raise ActionRefused("There are no orphans left to delete in this scan.")
        OrphanDeletion.objects.filter(pk=deletion.pk).update(total=claimed)
        deletion.total = claimed
        transaction.on_commit(lambda: _enqueue("delete_orphans", deletion.pk))
    return deletion


def execute_deletion(deletion_id: int, final_attempt: bool = True) -> OrphanDeletion | None:
    """Delete (or resume deleting) the orphans a deletion claimed; None if nothing to do."""
    now = timezone.now()
    if not OrphanDeletion.objects.filter(pk=deletion_id, state__in=SCAN_ACTIVE_STATES).update(
        state=ScanState.RUNNING, heartbeat=now
    ):
        return None
    OrphanDeletion.objects.filter(pk=deletion_id, started_at__isnull=True).update(started_at=now)
    deletion = OrphanDeletion.objects.select_related("scan__storage").get(pk=deletion_id)
    storage = deletion.scan.storage
    backend = get_backend(storage)
    try:
        while batch := _next_batch(deletion_id):
            delete_batch(deletion, backend, batch, final_attempt)
    except RunLost:
        return OrphanDeletion.objects.get(pk=deletion_id)
    except TransientStorageError:
        OrphanDeletion.objects.filter(pk=deletion_id, state=ScanState.RUNNING).update(
            heartbeat=timezone.now()
        )
        raise
    deletion.refresh_from_db(fields=["failed"])
    _end(OrphanDeletion, deletion_id, ScanState.FAILED if deletion.failed else ScanState.SUCCEEDED)
    return OrphanDeletion.objects.get(pk=deletion_id)


def _next_batch(deletion_id: int) -> list[ScanItem]:
    """The next items the deletion holds and has not decided yet; RunLost if retired."""
    if not OrphanDeletion.objects.filter(pk=deletion_id, state=ScanState.RUNNING).update(
        heartbeat=timezone.now()
    ):
        raise RunLost(deletion_id)
    return list(
        ScanItem.objects.filter(deletion_id=deletion_id, resolution=ScanItemResolution.OPEN)
        .order_by("id")
        .only("id", "uuid")[:DELETE_BATCH]
    )


def delete_batch(deletion: OrphanDeletion, backend, batch: list[ScanItem], final_attempt: bool):
    """Re-check each orphan of ``batch`` (age, then database), delete the rest, record all."""
    scrub = deletion.scan.storage.scrub
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
    # The database check comes last, right before the delete, to keep the window small.
    for uuid, state in Checkpoint.objects.filter(uuid__in=list(sizes)).values_list("uuid", "state"):
        if state != CheckpointState.DELETED:
            item, _size = sizes.pop(str(uuid))
            note = f"a checkpoint with this UUID exists now ({state})"
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
            outcomes[item.pk] = (ScanItemResolution.DELETE_FAILED, scrub(errors[uuid]), 0)
        else:
            outcomes[item.pk] = (ScanItemResolution.FILES_DELETED, "", size)
    record_outcomes(deletion.pk, batch, outcomes)


def record_outcomes(deletion_id: int, batch, outcomes: dict[int, tuple[str, str, int]]) -> None:
    """Save each item's outcome (compare-and-set on the claim) and the deletion's progress."""
    with transaction.atomic():
        deletion = OrphanDeletion.objects.select_for_update().get(pk=deletion_id)
        for item in batch:
            resolution, note, size = outcomes[item.pk]
            note = note[:MAX_ERROR_CHARS]
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


# --- actions on single items ----------------------------------------------------------------


def _open_item(item: ScanItem, kind: str) -> None:
    if item.kind != kind:
        raise ActionRefused(f"This action applies to {kind.lower()} items only.")
    if item.resolution not in DELETABLE or (
        item.deletion_id and item.deletion.state in SCAN_ACTIVE_STATES
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
    from storage.services import ImportSkip, _import_one

    _open_item(item, ScanItemKind.ORPHANED)
    storage = item.scan.storage
    if experiment.storage_id != storage.pk:
        raise ActionRefused(f"Experiment {experiment.pk} does not store checkpoints here.")
    if trial is not None and trial.experiment_id != experiment.pk:
        raise ActionRefused(f"Trial {trial.pk} is not a trial of experiment {experiment.pk}.")
    try:
        checkpoint = _import_one(get_backend(storage), experiment, trial, str(item.uuid))
    except ImportSkip as exc:
        raise ActionRefused(f"Cannot import: {exc}.") from None
    except StorageError as exc:
        raise ActionRefused(storage.scrub(f"Cannot import: {exc}")) from None
    _resolve(item, ScanItemResolution.IMPORTED, checkpoint_id=checkpoint.pk)
    return checkpoint


def mark_missing_deleted(item: ScanItem) -> None:
    """Mark a missing checkpoint DELETED, after checking again that its files are absent."""
    _open_item(item, ScanItemKind.MISSING)
    checkpoint = _item_checkpoint(item)
    storage = item.scan.storage
    try:
        files = get_backend(storage).list_files(str(checkpoint.uuid))
    except StorageError as exc:
        raise ActionRefused(storage.scrub(f"Cannot check storage: {exc}")) from None
    if files:
        raise ActionRefused(f"{len(files)} file(s) of this checkpoint are on storage now.")
    if not Checkpoint.objects.filter(pk=checkpoint.pk, state=CheckpointState.COMPLETED).update(
        state=CheckpointState.DELETED
    ):
        raise ActionRefused("The checkpoint is no longer COMPLETED.")
    _resolve(item, ScanItemResolution.MARKED_DELETED)


def resync_resources(item: ScanItem) -> dict[str, int]:
    """Replace a drifted checkpoint's resources and size with what storage holds now."""
    _open_item(item, ScanItemKind.DRIFTED)
    checkpoint = _item_checkpoint(item)
    storage = item.scan.storage
    try:
        files = get_backend(storage).list_files(str(checkpoint.uuid))
    except StorageError as exc:
        raise ActionRefused(storage.scrub(f"Cannot list storage: {exc}")) from None
    if not files:
        raise ActionRefused("The checkpoint has no files on storage now; mark it deleted instead.")
    resources = {stored.path: stored.size for stored in files}
    if not Checkpoint.objects.filter(pk=checkpoint.pk, state=CheckpointState.COMPLETED).update(
        resources=resources, size_bytes=sum(resources.values())
    ):
        raise ActionRefused("The checkpoint is no longer COMPLETED.")
    _resolve(item, ScanItemResolution.RESYNCED)
    return resources


def _item_checkpoint(item: ScanItem) -> Checkpoint:
    checkpoint = Checkpoint.objects.filter(pk=item.checkpoint_id).first()
    if checkpoint is None:
        raise ActionRefused("The checkpoint no longer exists.")
    return checkpoint


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
