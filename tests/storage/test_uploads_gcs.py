"""Uploads to GCS (gcp-storage-emulator over HTTP): V4 signed PUT URLs; a large file comes
in part objects that ``complete`` composes (in rounds of 32) and then deletes."""

from __future__ import annotations

import pytest
import requests

from experiments import services
from experiments.models import Checkpoint
from storage.models import UploadSession
from tests import factories

pytestmark = pytest.mark.django_db

KiB = 1024


@pytest.fixture
def gcs_trial(alice, gcs_store, gcs_signing_key):
    return services.create_trial(factories.make_experiment(alice, gcs_store.config), {})


def open_upload(api, trial, files):
    body = {
        "steps_completed": 3,
        "files": [{"path": path, "size": len(data)} for path, data in files.items()],
    }
    response = api.post(f"/api/v1/trials/{trial.pk}/uploads", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def objects(store) -> dict[str, bytes]:
    bucket = store.admin.bucket(store.bucket)
    return {
        blob.name: bucket.blob(blob.name).download_as_bytes()
        for blob in store.admin.list_blobs(store.bucket, prefix=store.prefix + "/")
    }


def put_parts(item, data) -> None:
    start = 0
    for part in item["parts"]:
        response = requests.put(part["url"], data=data[start : start + part["size"]], timeout=30)
        assert response.status_code == 200, response.text
        start += part["size"]


def test_files_go_to_signed_urls_and_parts_are_composed(alice_api, gcs_trial, gcs_store, settings):
    settings.CKPTWEB_UPLOAD_PART_BYTES = KiB  # 40 parts: two rounds of compose
    files = {"big.bin": bytes(range(256)) * 160, "small.txt": b"hi"}
    body = open_upload(alice_api, gcs_trial, files)
    by_path = {item["path"]: item for item in body["files"]}
    assert len(by_path["big.bin"]["parts"]) == 40 and len(by_path["small.txt"]["parts"]) == 1
    assert "X-Goog-Signature=" in by_path["small.txt"]["parts"][0]["url"]
    for path, data in files.items():
        put_parts(by_path[path], data)

    done = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert done.status_code == 201, done.json()
    assert Checkpoint.objects.get(uuid=body["uuid"]).resources == {
        "big.bin": len(files["big.bin"]),
        "small.txt": 2,
    }
    prefix = f"{gcs_store.prefix}/{body['uuid']}/"
    assert objects(gcs_store) == {prefix + path: data for path, data in files.items()}


def test_a_missing_part_is_refused_naming_the_file(alice_api, gcs_trial, settings):
    settings.CKPTWEB_UPLOAD_PART_BYTES = KiB
    data = b"x" * (3 * KiB)
    body = open_upload(alice_api, gcs_trial, {"big.bin": data})
    put_parts({"parts": body["files"][0]["parts"][:2]}, data)

    response = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert response.status_code == 400, response.json()
    assert "big.bin" in response.json()["message"]
    assert not Checkpoint.objects.exists()


def test_abort_removes_files_and_parts(alice_api, gcs_trial, gcs_store, settings):
    settings.CKPTWEB_UPLOAD_PART_BYTES = KiB
    files = {"big.bin": b"b" * (2 * KiB), "small.txt": b"hi"}
    body = open_upload(alice_api, gcs_trial, files)
    for item in body["files"]:
        put_parts(item, files[item["path"]])
    assert len(objects(gcs_store)) == 3  # two parts and a file

    assert alice_api.delete(f"/api/v1/uploads/{body['id']}").status_code == 204

    assert objects(gcs_store) == {}
    assert UploadSession.objects.get(pk=body["id"]).state == "ABORTED"
