"""Uploads through ckptweb's API on shared_fs (docs/architecture.md "Uploads"): a session,
ranged PUTs streamed to disk, complete through the report's service, abort and expiry."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from experiments import services
from experiments.gc.sweep import sweep
from experiments.models import Checkpoint
from storage.models import UploadSession
from storage.reconcile.models import StorageScan
from storage.reconcile.scan import execute_scan
from tests import factories

pytestmark = pytest.mark.django_db

FILES = {"model/weights.bin": b"w" * 1000, "metadata.json": b'{"a": 1}'}


def open_upload(api, trial, files=FILES, **extra):
    body = {
        "steps_completed": 100,
        "metadata": {"framework": "torch"},
        "files": [{"path": path, "size": len(data)} for path, data in files.items()],
        **extra,
    }
    return api.post(f"/api/v1/trials/{trial.pk}/uploads", body, format="json")


def put(api, url, data, content_range=None):
    headers = {"HTTP_CONTENT_RANGE": content_range} if content_range else {}
    return api.put(url, data=data, content_type="application/octet-stream", **headers)


def directory(trial, uuid) -> Path:
    return Path(trial.experiment.storage.host_path) / str(uuid)


def urls_of(body) -> dict[str, str]:
    return {item["path"]: item["parts"][0]["url"] for item in body["files"]}


def upload_all(api, body, files=FILES):
    for path, url in urls_of(body).items():
        assert put(api, url, files[path]).status_code == 200


def test_an_upload_in_two_ranges_resumes_and_completes_as_a_report(alice_api, trial):
    response = open_upload(alice_api, trial)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [(f["path"], f["size"], len(f["parts"])) for f in body["files"]] == [
        ("model/weights.bin", 1000, 1),
        ("metadata.json", 8, 1),
    ]
    urls = urls_of(body)
    assert urls["model/weights.bin"].endswith(
        f"/api/v1/uploads/{body['id']}/files/model/weights.bin"
    )

    weights = FILES["model/weights.bin"]
    first = put(alice_api, urls["model/weights.bin"], weights[:600], "bytes 0-599/1000")
    assert first.status_code == 200, first.json()
    progress = alice_api.get(f"/api/v1/uploads/{body['id']}").json()
    assert {f["path"]: f["present"] for f in progress["files"]} == {
        "model/weights.bin": 600,
        "metadata.json": 0,
    }
    rest = put(alice_api, urls["model/weights.bin"], weights[600:], "bytes 600-999/1000")
    assert rest.status_code == 200, rest.json()
    assert put(alice_api, urls["metadata.json"], FILES["metadata.json"]).status_code == 200

    done = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert done.status_code == 201, done.json()
    checkpoint = Checkpoint.objects.get(uuid=body["uuid"])
    assert checkpoint.state == "COMPLETED" and checkpoint.trial_id == trial.pk
    assert checkpoint.resources == {"model/weights.bin": 1000, "metadata.json": 8}
    assert checkpoint.steps_completed == 100 and checkpoint.metadata == {"framework": "torch"}
    on_disk = directory(trial, body["uuid"])
    assert (on_disk / "model/weights.bin").read_bytes() == weights
    assert (on_disk / "metadata.json").read_bytes() == FILES["metadata.json"]
    assert UploadSession.objects.get(pk=body["id"]).state == "COMPLETED"
    again = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")
    assert again.status_code == 409 and Checkpoint.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: (d / "metadata.json").unlink(), "'metadata.json' is missing"),
        (lambda d: (d / "metadata.json").write_bytes(b"{}"), "'metadata.json' has 2 of 8 bytes"),
        (lambda d: (d / "stray.log").write_bytes(b"x"), "'stray.log' was not declared"),
    ],
)
def test_complete_refuses_a_missing_short_or_extra_file_naming_it(alice_api, trial, change, named):
    body = open_upload(alice_api, trial).json()
    upload_all(alice_api, body)
    change(directory(trial, body["uuid"]))

    response = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["message"].startswith("files: ")
    assert named in response.json()["message"]
    assert not Checkpoint.objects.exists()
    assert UploadSession.objects.get(pk=body["id"]).state == "OPEN"


@pytest.mark.parametrize("path", ["../escape.bin", "/etc/passwd", "a/../../b", "a//b"])
def test_an_unsafe_path_is_refused_naming_files(alice_api, trial, path):
    response = open_upload(alice_api, trial, files={path: b"x"})
    assert response.status_code == 400, response.json()
    assert response.json()["message"].startswith("files")
    assert not UploadSession.objects.exists()


def test_the_part_objects_names_are_reserved(alice_api, trial):
    response = open_upload(alice_api, trial, files={"w.bin.ckptweb-part-00001": b"x"})
    assert response.status_code == 400 and "reserved" in response.json()["message"]
    assert response.json()["message"].startswith("files") and not UploadSession.objects.exists()


def test_the_reports_limits_apply(alice_api, trial):
    too_big = alice_api.post(
        f"/api/v1/trials/{trial.pk}/uploads",
        {"steps_completed": 1, "files": [{"path": "a", "size": 2**50 + 1}]},
        format="json",
    )
    assert too_big.status_code == 400 and "files" in too_big.json()["message"]
    metadata = open_upload(alice_api, trial, metadata={"a": "x" * (1024 * 1024)})
    assert metadata.status_code == 400 and metadata.json()["message"].startswith("metadata")
    twice = open_upload(alice_api, trial, files=FILES)
    assert twice.status_code == 201
    assert not UploadSession.objects.exclude(pk=twice.json()["id"]).exists()


def test_bob_cannot_upload_to_alices_trial(alice_api, bob_api, trial):
    assert open_upload(bob_api, trial).status_code == 403
    assert not UploadSession.objects.exists()
    body = open_upload(alice_api, trial).json()
    url = urls_of(body)["metadata.json"]
    assert put(bob_api, url, FILES["metadata.json"]).status_code == 403
    assert bob_api.post(f"/api/v1/uploads/{body['id']}/complete", {}).status_code == 403
    assert bob_api.delete(f"/api/v1/uploads/{body['id']}").status_code == 403
    # Its URLs are write capabilities (presigned PUTs on object stores): not even a read.
    assert bob_api.get(f"/api/v1/uploads/{body['id']}").status_code == 403
    assert not directory(trial, body["uuid"]).exists()


def test_a_write_past_the_declared_size_is_refused(alice_api, trial):
    body = open_upload(alice_api, trial).json()
    url = urls_of(body)["metadata.json"]

    assert put(alice_api, url, b"x" * 9).status_code == 400
    assert put(alice_api, url, b"x" * 4, "bytes 6-9/8").status_code == 400
    assert put(alice_api, url, b"x" * 4, "bytes 4-7/9").status_code == 400
    gap = put(alice_api, url, b"x" * 4, "bytes 4-7/8")  # nothing before byte 4 yet
    assert gap.status_code == 400 and "Content-Range" in gap.json()["message"]
    assert not (directory(trial, body["uuid"]) / "metadata.json").exists()
    undeclared = put(alice_api, url.replace("metadata.json", "other.bin"), b"x")
    assert undeclared.status_code == 400
    assert not (directory(trial, body["uuid"]) / "other.bin").exists()


def test_a_symlinked_directory_is_never_written_through(alice_api, trial, tmp_path):
    body = open_upload(alice_api, trial).json()
    outside = tmp_path / "outside"
    outside.mkdir()
    checkpoint_dir = directory(trial, body["uuid"])
    checkpoint_dir.mkdir()
    os.symlink(outside, checkpoint_dir / "model")

    response = put(alice_api, urls_of(body)["model/weights.bin"], FILES["model/weights.bin"])

    assert response.status_code == 400, response.json()
    assert list(outside.iterdir()) == []


def test_abort_removes_what_was_uploaded(alice_api, trial):
    body = open_upload(alice_api, trial).json()
    upload_all(alice_api, body)
    assert directory(trial, body["uuid"]).exists()

    response = alice_api.delete(f"/api/v1/uploads/{body['id']}")

    assert response.status_code == 204
    assert not directory(trial, body["uuid"]).exists()
    assert UploadSession.objects.get(pk=body["id"]).state == "ABORTED"
    late = put(alice_api, urls_of(body)["metadata.json"], FILES["metadata.json"])
    assert late.status_code == 409 and not directory(trial, body["uuid"]).exists()


def test_the_sweep_aborts_an_expired_session_and_leaves_no_file(alice_api, trial):
    expired = open_upload(alice_api, trial).json()
    live = open_upload(alice_api, trial).json()
    upload_all(alice_api, expired)
    upload_all(alice_api, live)
    UploadSession.objects.filter(pk=expired["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    sweep()

    assert not directory(trial, expired["uuid"]).exists()
    assert UploadSession.objects.get(pk=expired["id"]).state == "ABORTED"
    assert UploadSession.objects.get(pk=live["id"]).state == "OPEN"
    assert (directory(trial, live["uuid"]) / "metadata.json").exists()


def test_a_scan_during_a_live_upload_reports_no_orphan(alice_api, trial, settings):
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 0
    body = open_upload(alice_api, trial).json()
    upload_all(alice_api, body)
    old = timezone.now().timestamp() - 7200
    for root, _, names in os.walk(directory(trial, body["uuid"])):
        for name in [*names, "."]:
            os.utime(os.path.join(root, name), (old, old))
    storage = trial.experiment.storage

    scan = execute_scan(StorageScan.objects.create(storage=storage, grace_seconds=0).pk)

    assert scan.state == "SUCCEEDED", scan.error
    assert not scan.items.filter(uuid=body["uuid"]).exists()
    # Once the session is aborted the same kind of directory is an orphan again.
    UploadSession.objects.filter(pk=body["id"]).update(state="ABORTED")
    rescan = execute_scan(StorageScan.objects.create(storage=storage, grace_seconds=0).pk)
    assert rescan.items.filter(uuid=body["uuid"], kind="ORPHANED").exists()


def test_a_uuid_a_checkpoint_has_is_refused(alice_api, trial, alice, default_storage):
    other = factories.make_experiment(alice, default_storage, name="other")
    taken = services.report_checkpoint(services.create_trial(other), 1, {})

    response = open_upload(alice_api, trial, uuid=str(taken.uuid))

    assert response.status_code == 400 and response.json()["message"].startswith("uuid")
    assert not UploadSession.objects.exists()


def test_a_file_over_the_json_body_limit_streams_to_disk(alice_api, trial):
    big = b"z" * (17 * 1024 * 1024)  # the JSON parser refuses bodies over 16 MiB
    body = open_upload(alice_api, trial, files={"big.bin": big}).json()

    response = put(alice_api, urls_of(body)["big.bin"], big)

    assert response.status_code == 200, response.json()
    assert (directory(trial, body["uuid"]) / "big.bin").stat().st_size == len(big)


def test_nothing_is_written_for_an_experiment_being_deleted(alice_api, trial):
    body = open_upload(alice_api, trial).json()
    type(trial.experiment).objects.filter(pk=trial.experiment_id).update(state="DELETING")

    response = put(alice_api, urls_of(body)["metadata.json"], FILES["metadata.json"])

    assert response.status_code == 409, response.json()
    assert not directory(trial, body["uuid"]).exists()
    assert open_upload(alice_api, trial).status_code == 409
