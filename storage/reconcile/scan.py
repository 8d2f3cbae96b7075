"""Storage scans: compare what a storage holds with what the database says.

A **scan** (``execute_scan``) streams the storage's ``<uuid>/`` directories in name order
(``storage.backends.listing``) and merge-joins them with this storage's checkpoints read
from the database in UUID order (keyset pages), so neither side is ever held whole:

* *orphaned* — a directory whose UUID is no known checkpoint, or whose checkpoint is
  DELETED, and that nothing wrote to within the grace period
  (``settings.CKPTWEB_SCAN_GRACE_SECONDS``);
* *missing* — a COMPLETED checkpoint that recorded files but has none on storage
  (checkpoints reported after the scan started are left for the next scan);
* *drifted* — a COMPLETED checkpoint whose files differ from its recorded ``resources``
  (size changed, file missing, extra file).

A directory named like no canonical UUID, or holding a checkpoint of another storage
(two configs on one location), is counted as skipped and never touched. Each attempt
starts clean (the items of an earlier one are discarded); progress is saved with the
heartbeat, and the run's lifecycle (claim, beat, finish, retirement) is ``ckptweb.jobs``'.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ckptweb import jobs
from ckptweb.jobs import RunState
from ckptweb.lib.limits import InvalidInput
from ckptweb.lib.paths import UnsafePath
from experiments.choices import CheckpointState
from experiments.models import Checkpoint
from storage import uploads
from storage.backends import get_backend
from storage.backends.base import ListedDirectory, StorageError, check_uuid
from storage.reconcile.choices import ScanItemKind
from storage.reconcile.models import ScanItem, StorageScan
from storage.services import METADATA_FILE, read_metadata

#: Directories per database lookup and per insert of scan items.
SCAN_BATCH = 500
#: Checkpoints read per keyset page of the merge-join.
KNOWN_PAGE = 1000
#: Longest lists of paths kept in a drift item's details.
DETAIL_LIMIT = 100


def grace_seconds() -> int:
    """Age a directory needs before it can be called orphaned."""
    return max(0, settings.CKPTWEB_SCAN_GRACE_SECONDS)


def execute_scan(scan_id: int, final_attempt: bool = True) -> StorageScan | None:
    """Run (or restart) scan ``scan_id``; None when it is missing or already finished.

    Raises TransientStorageError for the caller to retry unless ``final_attempt``.
    """
    started = timezone.now()

    def work(scan: StorageScan) -> str:
        scan.items.all().delete()
        Scanner(scan, get_backend(scan.storage), started=started).run()
        return RunState.SUCCEEDED

    scans = StorageScan.objects.select_related("storage")
    return jobs.execute(scans, scan_id, work, final_attempt, started_at=started, error="")


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
        self.live_uploads = uploads.live_uuids(scan.storage_id)

    def run(self) -> None:
        """Walk the listing and the known checkpoints side by side, then flush."""
        known = self.known_checkpoints()
        row = next(known, None)
        for listed in self.backend.iter_directories():
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
        """Queue a directory for a batched lookup of its UUID among all checkpoints.

        The directory of an OPEN upload session is no orphan: it is skipped.
        """
        if uuid in self.live_uploads:
            self.counts["skipped"] += 1
            return
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
            jobs.beat(StorageScan, self.scan.pk, **self.counts)
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
    try:
        metadata = read_metadata(backend, directory.uuid, directory.metadata_size)
    except InvalidInput as exc:
        return {"metadata_error": exc.message[:200]}
    except StorageError as exc:
        return {"metadata_error": backend.scrub(str(exc))[:200] or "unreadable"}
    summary = {
        key: metadata[key]
        for key in ("experiment_id", "trial_id", "steps_completed")
        if isinstance(metadata.get(key), int) and not isinstance(metadata.get(key), bool)
    }
    return {"metadata": summary}
