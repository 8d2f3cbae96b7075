"""Scans classify every planted case right on shared_fs, S3 (moto) and GCS (emulator)."""

from __future__ import annotations

import json
import uuid as uuid_lib

import pytest

from storage.reconcile.models import ScanItem, StorageScan
from storage.reconcile.scan import execute_scan, grace_seconds
from tests.factories import s3_storage


def run_scan(store) -> StorageScan:
    scan = StorageScan.objects.create(storage=store.config, grace_seconds=grace_seconds())
    return execute_scan(scan.pk)


def items_by_uuid(scan) -> dict[str, ScanItem]:
    return {str(item.uuid): item for item in scan.items.all()}


def test_it_classifies_every_planted_case(planter, grace, alice):
    from experiments.models import Experiment, Trial

    live = planter.live({"metadata.json": b"{}", "model/weights.bin": b"x" * 10})
    unknown = planter.orphan_with_metadata(
        experiment_id=planter.experiment.pk, trial_id=planter.trial.pk, steps_completed=7
    )
    bare_unknown = planter.directory({"a.bin": b"abc", "sub/b.bin": b"defg"})
    deleted = planter.checkpoint({"a.bin": 5}, {"a.bin": b"12345"}, state="DELETED")
    missing = planter.checkpoint({"a.bin": 5, "dir/": 0}, {})
    resized = planter.checkpoint({"a.bin": 5}, {"a.bin": b"1234567"})
    extra = planter.checkpoint({"a.bin": 1}, {"a.bin": b"1", "stray.log": b"zz"})
    lost_file = planter.checkpoint({"a.bin": 1, "b.bin": 2}, {"a.bin": b"1"})
    deleting = planter.checkpoint({"a.bin": 1}, {"a.bin": b"1"}, state="DELETING")
    no_files_recorded = planter.checkpoint({}, {})
    planter.directory({"readme.txt": b"not a checkpoint"}, name="notes")
    # A checkpoint of another storage whose UUID also has a directory here.
    other = Experiment.objects.create(
        owner=alice, name="elsewhere", searcher_metric="loss", storage=planter.store.config
    )
    from experiments.models import Checkpoint
    from storage.models import StorageConfig

    elsewhere = StorageConfig.objects.create(name="elsewhere", type="shared_fs", host_path="/x")
    Experiment.objects.filter(pk=other.pk).update(storage=elsewhere)
    foreign = Checkpoint.objects.create(
        trial=Trial.objects.create(experiment=other), steps_completed=1, resources={"f": 1}
    )
    planter.files(foreign.uuid, {"f": b"1"})

    scan = run_scan(planter.store)

    assert scan.state == "SUCCEEDED", scan.error
    found = items_by_uuid(scan)
    kinds = {uuid: item.kind for uuid, item in found.items()}
    assert kinds == {
        unknown: "ORPHANED",
        bare_unknown: "ORPHANED",
        str(deleted.uuid): "ORPHANED",
        str(missing.uuid): "MISSING",
        str(resized.uuid): "DRIFTED",
        str(extra.uuid): "DRIFTED",
        str(lost_file.uuid): "DRIFTED",
    }
    assert str(live.uuid) not in found and str(deleting.uuid) not in found
    assert str(no_files_recorded.uuid) not in found and str(foreign.uuid) not in found

    orphan = found[unknown]
    metadata_bytes = len(
        json.dumps(
            {
                "experiment_id": planter.experiment.pk,
                "trial_id": planter.trial.pk,
                "steps_completed": 7,
            }
        )
    )
    assert (orphan.bytes, orphan.file_count) == (100 + metadata_bytes, 2)
    assert orphan.details["metadata"] == {
        "experiment_id": planter.experiment.pk,
        "trial_id": planter.trial.pk,
        "steps_completed": 7,
    }
    assert orphan.checkpoint_id is None
    assert (found[bare_unknown].bytes, found[bare_unknown].file_count) == (7, 2)
    assert "metadata" not in found[bare_unknown].details
    assert found[str(deleted.uuid)].details["checkpoint_state"] == "DELETED"
    assert found[str(deleted.uuid)].checkpoint_id == deleted.pk
    assert found[str(deleted.uuid)].bytes == 5

    assert found[str(missing.uuid)].bytes == 5
    assert found[str(missing.uuid)].checkpoint_id == missing.pk
    assert found[str(resized.uuid)].details["changed"] == [
        {"path": "a.bin", "recorded": 5, "actual": 7}
    ]
    assert found[str(extra.uuid)].details["extra"] == ["stray.log"]
    assert found[str(extra.uuid)].details["missing"] == []
    assert found[str(lost_file.uuid)].details["missing"] == ["b.bin"]

    assert (scan.orphaned, scan.missing, scan.drifted) == (3, 1, 3)
    assert scan.orphaned_bytes == sum(found[u].bytes for u, k in kinds.items() if k == "ORPHANED")
    assert scan.skipped == 2  # "notes" and the other storage's checkpoint
    assert scan.finished_at is not None


def test_a_young_directory_is_never_orphaned(planter, settings):
    """Object stores: grace 0 calls the directory orphaned, a large grace does not.

    On shared_fs the directory's mtime is set explicitly on both sides of the grace.
    """
    name = planter.directory({"a.bin": b"abc"})
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    if planter.store.kind == "shared_fs":
        planter.young(name)
        assert run_scan(planter.store).young == 1
        planter.age(name)
    young_scan = run_scan(planter.store)
    if planter.store.kind != "shared_fs":
        assert young_scan.items.count() == 0
        assert young_scan.young == 1
        settings.CKPTWEB_SCAN_GRACE_SECONDS = 0
    old_scan = run_scan(planter.store)
    assert [str(i.uuid) for i in old_scan.items.filter(kind="ORPHANED")] == [name]
    assert old_scan.young == 0


def test_a_file_written_inside_an_old_directory_makes_it_young(fs_planter, settings):
    import os
    import time

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    name = fs_planter.directory({"a.bin": b"abc", "deep/b.bin": b"b"})
    now = time.time()
    os.utime(fs_planter.store.root / name / "deep" / "b.bin", (now, now))
    scan = run_scan(fs_planter.store)
    assert scan.orphaned == 0 and scan.young == 1


def test_checkpoints_reported_after_the_scan_started_are_not_missing(fs_planter, settings):
    from django.utils import timezone

    from experiments.models import Checkpoint

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    late = fs_planter.checkpoint({"a.bin": 3}, {})
    Checkpoint.objects.filter(pk=late.pk).update(
        report_time=timezone.now() + timezone.timedelta(minutes=5)
    )
    assert run_scan(fs_planter.store).missing == 0


def test_a_scan_that_cannot_list_fails_with_the_reason(db, settings):
    config = s3_storage("s3-down")
    scan = StorageScan.objects.create(storage=config)
    scan = execute_scan(scan.pk, final_attempt=True)
    assert scan.state == "FAILED"
    assert scan.error and config.secret_key not in scan.error


def test_a_finished_scan_is_not_run_again(fs_planter):
    scan = run_scan(fs_planter.store)
    assert execute_scan(scan.pk) is None


@pytest.mark.parametrize("name", ["NOT-A-UUID", str(uuid_lib.uuid4()).upper()])
def test_non_canonical_names_are_skipped_not_orphaned(fs_planter, settings, name):
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    fs_planter.directory({"a": b"1"}, name=name)
    scan = run_scan(fs_planter.store)
    assert (scan.orphaned, scan.skipped) == (0, 1)
