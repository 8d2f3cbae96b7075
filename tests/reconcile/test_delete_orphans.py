"""Deleting orphans never touches a live checkpoint, and leaves exactly the live files."""

from __future__ import annotations

import pytest

from storage.backends import get_backend
from storage.reconcile.actions import ActionRefused, start_deletion
from storage.reconcile.models import OrphanDeletion, StorageScan
from storage.reconcile.orphans import execute_deletion
from storage.reconcile.scan import execute_scan, grace_seconds


def run_scan(store) -> StorageScan:
    scan = StorageScan.objects.create(storage=store.config, grace_seconds=grace_seconds())
    return execute_scan(scan.pk)


def stored_files(store) -> set[tuple[str, str, int]]:
    """Every (directory, path, size) on the store, listed through the streaming listing."""
    return {
        (listed.name, stored.path, stored.size)
        for listed in get_backend(store.config).iter_directories()
        for stored in listed.files
    }


def expected_files(checkpoints) -> set[tuple[str, str, int]]:
    return {(str(c.uuid), path, size) for c in checkpoints for path, size in c.resources.items()}


def delete_all(scan) -> OrphanDeletion:
    deletion = start_deletion(scan)
    return execute_deletion(deletion.pk)


def test_afterwards_storage_holds_exactly_the_live_checkpoints_files(planter, grace):
    from experiments.models import Checkpoint

    live = [
        planter.live({"metadata.json": b"{}", "w.bin": b"x" * 30}),
        planter.live({"a/b/c.bin": b"abc"}),
    ]
    planter.checkpoint({"a.bin": 5}, {"a.bin": b"12345"}, state="DELETED")
    planter.directory({"x.bin": b"x" * 50, "nested/y.bin": b"y"})
    registered_later = planter.orphan_with_metadata(steps_completed=3)

    scan = run_scan(planter.store)
    assert scan.orphaned == 3

    # After the scan, training reports a checkpoint under an orphan-classified UUID.
    late = Checkpoint.objects.create(
        trial=planter.trial,
        uuid=registered_later,
        steps_completed=3,
        resources={p: s for _d, p, s in stored_files(planter.store) if _d == registered_later},
    )
    deletion = delete_all(scan)

    assert deletion.state == "SUCCEEDED", deletion.errors
    assert (deletion.total, deletion.deleted, deletion.skipped, deletion.failed) == (3, 2, 1, 0)
    assert deletion.reclaimed_bytes == 5 + 51
    assert stored_files(planter.store) == expected_files([*live, late])
    kept = scan.items.get(uuid=registered_later)
    assert kept.resolution == "KEPT" and "exists now" in kept.resolution_note
    assert Checkpoint.objects.get(pk=late.pk).state == "COMPLETED"


def test_a_directory_written_to_after_the_scan_is_kept(fs_planter, settings):
    import os
    import time

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    name = fs_planter.directory({"a.bin": b"abc"})
    scan = run_scan(fs_planter.store)
    assert scan.orphaned == 1
    now = time.time()
    os.utime(fs_planter.store.root / name / "a.bin", (now, now))  # training resumed writing

    deletion = delete_all(scan)

    assert (deletion.deleted, deletion.skipped) == (0, 1)
    assert (fs_planter.store.root / name / "a.bin").exists()


def test_a_checkpoint_deleted_after_the_scan_is_still_deletable(fs_planter, settings):
    from experiments.models import Checkpoint

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    name = fs_planter.directory({"a.bin": b"abc"})
    scan = run_scan(fs_planter.store)
    Checkpoint.objects.create(trial=fs_planter.trial, uuid=name, steps_completed=1, state="DELETED")
    assert delete_all(scan).deleted == 1
    assert not (fs_planter.store.root / name).exists()


def test_per_item_errors_are_recorded_and_can_be_retried(fs_planter, settings, monkeypatch):
    from storage.backends.shared_fs import SharedFSBackend

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    stuck = fs_planter.directory({"a.bin": b"abc"})
    fine = fs_planter.directory({"b.bin": b"b"})
    scan = run_scan(fs_planter.store)
    real_remove = SharedFSBackend.remove_file

    def remove_file(full):
        if stuck in full:
            raise PermissionError(13, "Permission denied")
        real_remove(full)

    monkeypatch.setattr(SharedFSBackend, "remove_file", staticmethod(remove_file))
    deletion = delete_all(scan)

    assert deletion.state == "FAILED"
    assert (deletion.deleted, deletion.failed) == (1, 1)
    [error] = deletion.errors
    assert error["uuid"] == stuck and "Permission denied" in error["error"]
    assert not (fs_planter.store.root / fine).exists()

    monkeypatch.setattr(SharedFSBackend, "remove_file", staticmethod(real_remove))
    retry = delete_all(scan)
    assert (retry.total, retry.deleted, retry.state) == (1, 1, "SUCCEEDED")
    assert not (fs_planter.store.root / stuck).exists()


def test_nothing_left_to_delete_is_refused(fs_planter):
    scan = run_scan(fs_planter.store)
    with pytest.raises(ActionRefused):
        start_deletion(scan)


def test_a_transient_failure_is_raised_for_celery_to_retry(fs_planter, settings, monkeypatch):
    from storage.backends.base import TransientStorageError
    from storage.backends.shared_fs import SharedFSBackend

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    name = fs_planter.directory({"a.bin": b"abc"})
    scan = run_scan(fs_planter.store)
    deletion = start_deletion(scan)

    def down(self, uuids):
        raise TransientStorageError("connection refused")

    monkeypatch.setattr(SharedFSBackend, "delete_checkpoints", down)
    with pytest.raises(TransientStorageError):
        execute_deletion(deletion.pk, final_attempt=False)
    deletion.refresh_from_db()
    assert deletion.state == "RUNNING" and deletion.deleted == 0
    monkeypatch.undo()
    assert execute_deletion(deletion.pk).deleted == 1
    assert not (fs_planter.store.root / name).exists()
