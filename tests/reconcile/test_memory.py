"""A scan over 100k objects streams: its memory peak is a small fraction of the listing's."""

from __future__ import annotations

import gc
import os
import tracemalloc
import uuid as uuid_lib
from datetime import UTC, datetime, timedelta

import pytest

from storage.backends import get_backend
from storage.models import StorageConfig
from storage.reconcile.models import StorageScan
from storage.reconcile.scan import execute_scan, grace_seconds

DIRECTORIES = 1000
FILES_PER_DIRECTORY = 100  # 100,000 objects in all

pytestmark = pytest.mark.slow


def peak_of(function) -> int:
    """Peak traced memory (bytes) while ``function`` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SAMPLE_DIRECTORIES = 100


def held_listing_cost(backend) -> int:
    """What holding the whole listing at once takes (the thing a scan must not do).

    Measured on the first SAMPLE_DIRECTORIES directories and scaled up (it is linear), so
    the test does not pay for tracing the whole listing twice.
    """
    held = []

    def hold_sample():
        for index, directory in enumerate(backend.iter_directories()):
            if index == SAMPLE_DIRECTORIES:
                return
            held.extend(directory.files)

    return peak_of(hold_sample) * DIRECTORIES // SAMPLE_DIRECTORIES


def scan_peak(config) -> tuple[StorageScan, int]:
    scan = StorageScan.objects.create(storage=config, grace_seconds=grace_seconds())
    peak = peak_of(lambda: execute_scan(scan.pk))
    scan.refresh_from_db()
    return scan, peak


def test_a_shared_fs_scan_of_100k_files_has_bounded_memory(db, tmp_path, settings):
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 0  # the grace is not the subject: all are orphans
    root = tmp_path / "ckpts"
    root.mkdir()
    for _ in range(DIRECTORIES):
        directory = os.path.join(root, str(uuid_lib.uuid4()))
        os.mkdir(directory)
        for index in range(FILES_PER_DIRECTORY):
            path = f"{directory}/shard-{index:05d}-of-{FILES_PER_DIRECTORY:05d}.bin"
            handle = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(handle, b"x")
            os.close(handle)
    config = StorageConfig.objects.create(name="big", type="shared_fs", host_path=str(root))

    scan, peak = scan_peak(config)

    assert scan.state == "SUCCEEDED", scan.error
    assert scan.objects_listed == DIRECTORIES * FILES_PER_DIRECTORY
    assert (scan.orphaned, scan.orphaned_bytes) == (DIRECTORIES, DIRECTORIES * FILES_PER_DIRECTORY)
    held = held_listing_cost(get_backend(config))
    assert peak < held / 4, f"scan peak {peak} B vs holding the listing {held} B"


def test_an_s3_scan_groups_a_100k_object_listing_as_it_streams(db, monkeypatch, settings):
    """S3 pages (1,000 keys each) are generated on the fly; the scan must not collect them."""
    from storage.backends.s3 import S3Backend

    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    names = sorted(str(uuid_lib.uuid4()) for _ in range(DIRECTORIES))
    modified = datetime.now(tz=UTC) - timedelta(hours=2)

    def pages(self, prefix, delimiter=""):
        page = []
        for name in names:
            for index in range(FILES_PER_DIRECTORY):
                key = f"{prefix}{name}/shard-{index:05d}-of-{FILES_PER_DIRECTORY:05d}.bin"
                page.append({"Key": key, "Size": 7, "LastModified": modified, "ETag": '"e"'})
                if len(page) == 1000:
                    yield {"Contents": page}
                    page = []
        if page:
            yield {"Contents": page}

    monkeypatch.setattr(S3Backend, "iter_objects", pages)
    config = StorageConfig.objects.create(name="big-s3", type="s3", bucket="b", prefix="runs")

    scan, peak = scan_peak(config)

    assert scan.state == "SUCCEEDED", scan.error
    assert scan.objects_listed == DIRECTORIES * FILES_PER_DIRECTORY
    assert scan.orphaned == DIRECTORIES
    assert scan.orphaned_bytes == 7 * DIRECTORIES * FILES_PER_DIRECTORY
    held = held_listing_cost(get_backend(config))
    assert peak < held / 4, f"scan peak {peak} B vs holding the listing {held} B"
