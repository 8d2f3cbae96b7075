"""Uploads to S3 (moto's server over HTTP): presigned PUT URLs, multipart for large files,
real ``requests`` PUTs, complete checks the objects, abort removes them."""

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
def s3_trial(alice, s3_store):
    experiment = factories.make_experiment(alice, s3_store.config)
    return services.create_trial(experiment, {})


def open_upload(api, trial, files):
    body = {
        "steps_completed": 5,
        "files": [{"path": path, "size": len(data)} for path, data in files.items()],
    }
    response = api.post(f"/api/v1/trials/{trial.pk}/uploads", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def objects(store) -> dict[str, bytes]:
    listed = store.admin.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix + "/")
    return {
        item["Key"]: store.admin.get_object(Bucket=store.bucket, Key=item["Key"])["Body"].read()
        for item in listed.get("Contents", [])
    }


def put_parts(item, data) -> list[dict]:
    etags, start = [], 0
    for part in item["parts"]:
        response = requests.put(part["url"], data=data[start : start + part["size"]], timeout=30)
        assert response.status_code == 200, response.text
        etags.append({"number": part["number"], "etag": response.headers["ETag"]})
        start += part["size"]
    return etags


def test_single_file_uploads_go_to_presigned_urls(alice_api, s3_trial, s3_store):
    files = {"metadata.json": b"{}", "model/weights.bin": b"w" * 1000}
    body = open_upload(alice_api, s3_trial, files)
    for item in body["files"]:
        assert len(item["parts"]) == 1
        assert s3_store.config.secret_key not in item["parts"][0]["url"]
        put_parts(item, files[item["path"]])

    done = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert done.status_code == 201, done.json()
    checkpoint = Checkpoint.objects.get(uuid=body["uuid"])
    assert checkpoint.state == "COMPLETED" and checkpoint.resources == {
        "metadata.json": 2,
        "model/weights.bin": 1000,
    }
    prefix = f"{s3_store.prefix}/{body['uuid']}/"
    assert objects(s3_store) == {prefix + path: data for path, data in files.items()}


def test_a_large_file_goes_in_parts_assembled_by_their_etags(
    alice_api, s3_trial, s3_store, settings
):
    settings.CKPTWEB_UPLOAD_PART_BYTES = 5 * MiB  # S3's smallest part; 64 MiB by default
    big = bytes(range(256)) * (11 * MiB // 256) + b"tail"
    files = {"big.bin": big, "small.txt": b"hello"}
    body = open_upload(alice_api, s3_trial, files)
    by_path = {item["path"]: item for item in body["files"]}
    assert [p["size"] for p in by_path["big.bin"]["parts"]] == [5 * MiB, 5 * MiB, MiB + 4]
    etags = put_parts(by_path["big.bin"], big)
    put_parts(by_path["small.txt"], b"hello")

    missing = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")
    assert missing.status_code == 400 and missing.json()["message"].startswith("parts")
    wrong = [{**etags[0], "etag": '"0000"'}, *etags[1:]]
    bad = alice_api.post(
        f"/api/v1/uploads/{body['id']}/complete", {"parts": {"big.bin": wrong}}, format="json"
    )
    assert bad.status_code == 400 and "big.bin" in bad.json()["message"]
    assert not Checkpoint.objects.exists()

    done = alice_api.post(
        f"/api/v1/uploads/{body['id']}/complete", {"parts": {"big.bin": etags}}, format="json"
    )

    assert done.status_code == 201, done.json()
    assert Checkpoint.objects.get(uuid=body["uuid"]).resources == {
        "big.bin": len(big),
        "small.txt": 5,
    }
    assert objects(s3_store)[f"{s3_store.prefix}/{body['uuid']}/big.bin"] == big


def test_a_short_object_is_refused_at_complete(alice_api, s3_trial):
    body = open_upload(alice_api, s3_trial, {"a.bin": b"abcdef"})
    requests.put(body["files"][0]["parts"][0]["url"], data=b"abc", timeout=30)

    response = alice_api.post(f"/api/v1/uploads/{body['id']}/complete", {}, format="json")

    assert response.status_code == 400
    assert "'a.bin' has 3 of 6 bytes" in response.json()["message"]


def test_abort_removes_objects_and_aborts_multipart_uploads(
    alice_api, s3_trial, s3_store, settings
):
    settings.CKPTWEB_UPLOAD_PART_BYTES = 5 * MiB
    big = b"b" * (6 * MiB)
    body = open_upload(alice_api, s3_trial, {"big.bin": big, "small.txt": b"hi"})
    by_path = {item["path"]: item for item in body["files"]}
    put_parts(by_path["small.txt"], b"hi")
    requests.put(by_path["big.bin"]["parts"][0]["url"], data=big[: 5 * MiB], timeout=30)
    assert objects(s3_store)

    assert alice_api.delete(f"/api/v1/uploads/{body['id']}").status_code == 204

    assert objects(s3_store) == {}
    pending = s3_store.admin.list_multipart_uploads(
        Bucket=s3_store.bucket, Prefix=f"{s3_store.prefix}/{body['uuid']}/"
    )
    assert pending.get("Uploads", []) == []
    assert UploadSession.objects.get(pk=body["id"]).state == "ABORTED"


def test_a_storage_without_direct_urls_takes_no_uploads(alice_api, s3_trial, s3_store):
    s3_store.config.direct_urls = False
    s3_store.config.save()
    body = {"steps_completed": 1, "files": [{"path": "a.bin", "size": 1}]}

    response = alice_api.post(f"/api/v1/trials/{s3_trial.pk}/uploads", body, format="json")

    assert response.status_code == 409, response.json()
    assert "no uploads" in response.json()["message"]
    assert not UploadSession.objects.exists()
