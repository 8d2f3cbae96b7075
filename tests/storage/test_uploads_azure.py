"""Uploads to Azure (Azurite over HTTP): every file is a block blob whose blocks go to SAS
Put Block URLs and which ``complete`` commits; abort leaves no blob."""

from __future__ import annotations

import pytest
import requests

from experiments import services
from experiments.models import Checkpoint
from storage.models import UploadSession
from tests import factories

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.fixture
def azure_trial(alice, azure_store):
    return services.create_trial(factories.make_experiment(alice, azure_store.config), {})


def open_upload(api, trial, files):
    body = {
        "steps_completed": 3,
        "files": [{"path": path, "size": len(data)} for path, data in files.items()],
    }
    response = api.post(f"/api/v1/trials/{trial.pk}/uploads", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def blobs(store) -> dict[str, bytes]:
    return {
        blob.name: store.admin.download_blob(blob.name).readall()
        for blob in store.admin.list_blobs(name_starts_with=store.prefix + "/")
    }


def put_blocks(item, data) -> None:
    start = 0
    for part in item["parts"]:
        response = requests.put(part["url"], data=data[start : start + part["size"]], timeout=30)
        assert response.status_code == 201, response.text
        start += part["size"]


def test_files_go_in_blocks_committed_at_complete(alice_api, azure_trial, azure_store, settings):
    settings.CKPTWEB_UPLOAD_PART_BYTES = 1 * MiB
    files = {"big.bin": bytes(range(256)) * (5 * MiB // 512), "small.txt": b"hi", "empty": b""}
    body = open_upload(alice_api, azure_trial, files)
    by_path = {item["path"]: item for item in body["files"]}
    assert [p["size"] for p in by_path["big.bin"]["parts"]] == [MiB, MiB, MiB // 2]
    assert "sig=" in by_path["small.txt"]["parts"][0]["url"]
    assert "AccountKey" not in str(body)
    for path, data in files.items():
        put_blocks(by_path[path], data)
    assert blobs(azure_store) == {}  # staged blocks are no blob yet

    done = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert done.status_code == 201, done.json()
    assert Checkpoint.objects.get(uuid=body["uuid"]).resources == {
        "big.bin": len(files["big.bin"]),
        "small.txt": 2,
        "empty": 0,
    }
    prefix = f"{azure_store.prefix}/{body['uuid']}/"
    assert blobs(azure_store) == {prefix + path: data for path, data in files.items()}


def test_a_missing_block_is_refused_naming_the_file(alice_api, azure_trial, settings):
    settings.CKPTWEB_UPLOAD_PART_BYTES = 1 * MiB
    data = b"x" * (2 * MiB)
    body = open_upload(alice_api, azure_trial, {"big.bin": data})
    first = body["files"][0]["parts"][0]
    assert requests.put(first["url"], data=data[: first["size"]], timeout=30).status_code == 201

    response = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert response.status_code == 400, response.json()
    assert "big.bin" in response.json()["message"]
    assert not Checkpoint.objects.exists()


def test_abort_leaves_no_blob(alice_api, azure_trial, azure_store):
    body = open_upload(alice_api, azure_trial, {"a.txt": b"abc", "b.txt": b"de"})
    by_path = {item["path"]: item for item in body["files"]}
    put_blocks(by_path["a.txt"], b"abc")
    # complete commits a.txt, then refuses: b.txt never came. The session stays open.
    refused = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")
    assert refused.status_code == 400 and "b.txt" in refused.json()["message"]
    assert list(blobs(azure_store)) == [f"{azure_store.prefix}/{body['uuid']}/a.txt"]

    assert alice_api.delete(f"/api/v1/uploads/{body['id']}").status_code == 204

    assert blobs(azure_store) == {}
    assert UploadSession.objects.get(pk=body["id"]).state == "ABORTED"
