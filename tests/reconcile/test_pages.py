"""Staff pages of storage reconciliation: summary, tables, and every action."""

from __future__ import annotations

import json

import pytest

from storage.reconcile.models import StorageScan
from storage.reconcile.scan import execute_scan


@pytest.fixture
def scanned(fs_planter, settings):
    """A finished scan with an importable orphan, a DELETED leftover, a missing and a drift."""
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600
    p = fs_planter
    p.importable = p.orphan_with_metadata(trial_id=p.trial.pk, steps_completed=12)
    p.leftover = p.checkpoint({"a": 1}, {"a": b"1"}, state="DELETED")
    p.missing = p.checkpoint({"m.bin": 4}, {})
    p.drifted = p.checkpoint({"d.bin": 1}, {"d.bin": b"dd", "new.bin": b"n"})
    scan = StorageScan.objects.create(storage=p.store.config, grace_seconds=3600)
    p.scan = execute_scan(scan.pk)
    p.base = f"/storage/{p.store.config.pk}/scans/"
    return p


def test_it_is_for_staff_only(client, alice, scanned):
    urls = [scanned.base, f"{scanned.base}{scanned.scan.pk}/"]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(alice)
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(f"{scanned.base}start/").status_code == 403
    assert client.post(f"{scanned.base}{scanned.scan.pk}/delete-orphans/").status_code == 403
    assert scanned.scan.deletions.count() == 0


def test_the_summary_and_the_tables(staff_client, scanned):
    page = staff_client.get(scanned.base).content.decode()
    assert f"Scan #{scanned.scan.pk}" in page
    assert 'id="scan-orphaned">2 ' in page
    assert scanned.importable in page and str(scanned.leftover.uuid) in page
    assert "steps_completed=12" in page
    missing = staff_client.get(f"{scanned.base}{scanned.scan.pk}/?kind=MISSING").content.decode()
    assert str(scanned.missing.uuid) in missing and scanned.importable not in missing
    drifted = staff_client.get(f"{scanned.base}{scanned.scan.pk}/?kind=DRIFTED").content.decode()
    assert "1 → 2 B" in drifted and "new.bin" in drifted
    filtered = staff_client.get(
        f"{scanned.base}{scanned.scan.pk}/?kind=ORPHANED&q={scanned.importable[:8]}"
    ).content.decode()
    assert scanned.importable in filtered and str(scanned.leftover.uuid) not in filtered


def test_a_storage_never_scanned_invites_a_scan(staff_client, fs_store):
    page = staff_client.get(f"/storage/{fs_store.config.pk}/scans/").content.decode()
    assert 'id="no-scan"' in page


def test_start_scan_runs_it(staff_client, fs_planter, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/storage/{fs_planter.store.config.pk}/scans/start/")
    scan = StorageScan.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/scans/{scan.pk}/")
    assert scan.state == "SUCCEEDED"


def test_delete_orphans_preview_confirm_progress(
    staff_client, scanned, django_capture_on_commit_callbacks
):
    url = f"{scanned.base}{scanned.scan.pk}/delete-orphans/"
    preview = staff_client.get(url).content.decode()
    assert 'data-count="2"' in preview and scanned.importable in preview
    assert (scanned.store.root / scanned.importable).exists()  # a preview deletes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url)
    deletion = scanned.scan.deletions.get()
    assert response.status_code == 302 and response.url.endswith(f"/deletions/{deletion.pk}/")
    progress = staff_client.get(response.url).content.decode()
    assert 'data-state="SUCCEEDED"' in progress
    assert not (scanned.store.root / scanned.importable).exists()
    assert not (scanned.store.root / str(scanned.leftover.uuid)).exists()
    card = staff_client.get(f"{response.url}card/", HTTP_HX_REQUEST="true")
    assert card.status_code == 200 and card["HX-Refresh"] == "true"


def test_import_an_orphan(staff_client, scanned):
    from experiments.models import Checkpoint

    item = scanned.scan.items.get(uuid=scanned.importable)
    url = f"{scanned.base}{scanned.scan.pk}/items/{item.pk}/import/"
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"experiment": scanned.experiment.pk})
    assert response.status_code == 302
    checkpoint = Checkpoint.objects.get(uuid=scanned.importable)
    assert checkpoint.trial_id == scanned.trial.pk and checkpoint.steps_completed == 12
    assert checkpoint.resources["weights.bin"] == 100
    item.refresh_from_db()
    assert item.resolution == "IMPORTED" and item.checkpoint_id == checkpoint.pk
    assert staff_client.post(url, {"experiment": scanned.experiment.pk}).status_code == 400


def test_an_orphan_without_metadata_cannot_be_imported(staff_client, scanned):
    name = scanned.directory({"x.bin": b"x"})
    scan = execute_scan(
        StorageScan.objects.create(storage=scanned.store.config, grace_seconds=3600).pk
    )
    item = scan.items.get(uuid=name)
    response = staff_client.post(
        f"{scanned.base}{scan.pk}/items/{item.pk}/import/", {"experiment": scanned.experiment.pk}
    )
    assert response.status_code == 400 and "no metadata.json" in response.content.decode()


def test_mark_missing_deleted_checks_storage_first(staff_client, scanned):
    item = scanned.scan.items.get(kind="MISSING")
    url = f"{scanned.base}{scanned.scan.pk}/items/{item.pk}/mark-deleted/"
    scanned.store.put(scanned.missing.uuid, "m.bin", b"back")  # the files came back
    staff_client.post(url)
    scanned.missing.refresh_from_db()
    assert scanned.missing.state == "COMPLETED"

    (scanned.store.root / str(scanned.missing.uuid) / "m.bin").unlink()
    staff_client.post(url)
    scanned.missing.refresh_from_db()
    item.refresh_from_db()
    assert scanned.missing.state == "DELETED" and item.resolution == "MARKED_DELETED"


def test_mark_all_missing_deleted(staff_client, scanned):
    staff_client.post(f"{scanned.base}{scanned.scan.pk}/mark-missing-deleted/")
    scanned.missing.refresh_from_db()
    assert scanned.missing.state == "DELETED"


def test_resync_resources_from_storage(staff_client, scanned):
    item = scanned.scan.items.get(kind="DRIFTED")
    staff_client.post(f"{scanned.base}{scanned.scan.pk}/items/{item.pk}/resync/")
    scanned.drifted.refresh_from_db()
    assert scanned.drifted.resources == {"d.bin": 2, "new.bin": 1}
    assert scanned.drifted.size_bytes == 3
    item.refresh_from_db()
    assert item.resolution == "RESYNCED"


def test_metadata_json_is_shown_escaped(staff_client, scanned):
    name = scanned.directory({"metadata.json": json.dumps({"trial_id": "<b>x</b>"}).encode()})
    scan = execute_scan(
        StorageScan.objects.create(storage=scanned.store.config, grace_seconds=3600).pk
    )
    page = staff_client.get(f"{scanned.base}{scan.pk}/").content.decode()
    assert name in page and "<b>x</b>" not in page


def test_the_actions_keep_the_experiment_summary(staff_client, scanned):
    """Marking a missing checkpoint DELETED and re-syncing a drifted one's size change the
    experiment's counts and bytes: the summary row follows
    (tests/experiments/gc/test_summary.py)."""
    from experiments import summary
    from experiments.models import ExperimentSummary

    experiment = scanned.experiment
    summary.refresh(experiment)  # the planter made its rows behind the services' back
    before = summary.computed(experiment)

    def stored():
        row = ExperimentSummary.objects.get(experiment_id=experiment.pk)
        return {name: getattr(row, name) for name in before}

    base = f"{scanned.base}{scanned.scan.pk}/items/"
    drifted = scanned.scan.items.get(kind="DRIFTED")
    staff_client.post(f"{base}{drifted.pk}/resync/")
    assert stored() == summary.computed(experiment), "after a resync"
    staff_client.post(f"{scanned.base}{scanned.scan.pk}/mark-missing-deleted/")
    after = summary.computed(experiment)
    assert stored() == after, "after marking the missing checkpoint DELETED"
    assert after["live"] == before["live"] - 1 and after["deleted"] == before["deleted"] + 1
    assert after["candidate_bytes"] == before["candidate_bytes"] - 4 + 2  # m.bin went; d.bin 1 -> 3
