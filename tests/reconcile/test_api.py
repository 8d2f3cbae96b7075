"""REST API of storage scans: staff only (anonymous 401, others 403), 202 for new runs."""

from __future__ import annotations

import pytest

from storage.reconcile.models import OrphanDeletion, StorageScan
from tests.factories import s3_storage


@pytest.fixture
def planted(fs_planter, settings):
    """A shared_fs storage with one orphan, one missing and one drifted checkpoint."""
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    fs_planter.live({"a.bin": b"abc"})
    fs_planter.orphan = fs_planter.directory({"o.bin": b"o" * 10})
    fs_planter.missing = fs_planter.checkpoint({"m.bin": 4}, {})
    fs_planter.drifted = fs_planter.checkpoint({"d.bin": 1}, {"d.bin": b"dd"})
    return fs_planter


def start(client, storage, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(f"/api/v1/storage/{storage}/scans")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/storage/{storage}/scans"),
        ("get", "/api/v1/storage/{storage}/scans"),
        ("get", "/api/v1/storage-scans/{scan}"),
        ("get", "/api/v1/storage-scans/{scan}/items"),
        ("get", "/api/v1/storage-scans/{scan}/delete-orphans"),
        ("post", "/api/v1/storage-scans/{scan}/delete-orphans"),
        ("get", "/api/v1/orphan-deletions/{deletion}"),
    ],
)
def test_it_is_for_staff_only(api, alice_api, planted, method, url):
    scan = StorageScan.objects.create(storage=planted.store.config, state="SUCCEEDED")
    deletion = OrphanDeletion.objects.create(scan=scan)
    url = url.format(storage=planted.store.config.pk, scan=scan.pk, deletion=deletion.pk)

    anonymous = getattr(api, method)(url)
    assert anonymous.status_code == 401
    signed_in = getattr(alice_api, method)(url)
    assert signed_in.status_code == 403
    assert "staff" in signed_in.json()["message"]
    assert StorageScan.objects.count() == 1 and OrphanDeletion.objects.count() == 1


def test_staff_scan_then_read_items_then_delete_orphans(
    staff_api, planted, django_capture_on_commit_callbacks
):
    config = planted.store.config
    response = start(staff_api, config.pk, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    body = response.json()
    assert body["created"] is True and body["storage_name"] == config.name
    scan = staff_api.get(f"/api/v1/storage-scans/{body['id']}").json()
    assert scan["state"] == "SUCCEEDED"
    assert (scan["orphaned"], scan["missing"], scan["drifted"]) == (1, 1, 1)
    assert scan["finished_at"] is not None

    items = staff_api.get(f"/api/v1/storage-scans/{body['id']}/items").json()
    assert items["count"] == 3
    orphans = staff_api.get(f"/api/v1/storage-scans/{body['id']}/items?kind=orphaned").json()
    assert [i["uuid"] for i in orphans["results"]] == [planted.orphan]
    assert orphans["results"][0]["bytes"] == 10
    bad = staff_api.get(f"/api/v1/storage-scans/{body['id']}/items?kind=lost")
    assert bad.status_code == 400 and "kind" in bad.json()["message"]

    preview = staff_api.get(f"/api/v1/storage-scans/{body['id']}/delete-orphans").json()
    assert (preview["count"], preview["bytes"]) == (1, 10)
    with django_capture_on_commit_callbacks(execute=True):
        started = staff_api.post(f"/api/v1/storage-scans/{body['id']}/delete-orphans")
    assert started.status_code == 202
    deletion = staff_api.get(f"/api/v1/orphan-deletions/{started.json()['id']}").json()
    assert (deletion["state"], deletion["deleted"], deletion["reclaimed_bytes"]) == (
        "SUCCEEDED",
        1,
        10,
    )
    assert not (planted.store.root / planted.orphan).exists()
    again = staff_api.post(f"/api/v1/storage-scans/{body['id']}/delete-orphans")
    assert again.status_code == 409


def test_storage_can_be_named_and_an_active_scan_is_reused(staff_api, planted):
    config = planted.store.config
    first = staff_api.post(f"/api/v1/storage/{config.name}/scans")  # not run: no on_commit
    second = staff_api.post(f"/api/v1/storage/{config.pk}/scans")
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"] and second.json()["created"] is False
    assert staff_api.post("/api/v1/storage/nope/scans").status_code == 404
    listed = staff_api.get(f"/api/v1/storage/{config.name}/scans?state=pending").json()
    assert [s["id"] for s in listed] == [first.json()["id"]]


def test_responses_never_show_storage_secrets(staff_api, db):
    config = s3_storage("s3-closed")
    scan = StorageScan.objects.create(storage=config)
    from storage.reconcile.scan import execute_scan

    execute_scan(scan.pk)
    body = staff_api.get(f"/api/v1/storage-scans/{scan.pk}").content.decode()
    assert '"FAILED"' in body
    assert config.secret_key not in body and config.access_key not in body
