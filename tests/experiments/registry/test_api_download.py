"""``models/{name}/versions/{n|latest}/download``: the checkpoint download, by name."""

import io
import tarfile
import zipfile

import pytest

from experiments import registry
from experiments.models import Checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(alice, model, checkpoints):
    registry.register_version(model, checkpoints[0], alice)
    registry.register_version(model, checkpoints[2], alice)
    return checkpoints


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_latest_is_the_newest_version_and_byte_identical(bob_api, registered):
    by_name = bob_api.get("/api/v1/models/resnet-prod/versions/latest/download")
    by_uuid = bob_api.get(f"/api/v1/checkpoints/{registered[2].uuid}/download")
    assert by_name.status_code == 200
    assert by_name["Content-Type"] == "application/x-tar"
    assert 'filename="resnet-prod-v2.tar"' in by_name["Content-Disposition"]
    data = body(by_name)
    assert data == body(by_uuid)
    assert int(by_name["Content-Length"]) == len(data)
    files = members(data)
    assert any(name.endswith("state-dict.pth") for name in files)
    assert bytes([300 % 256]) * 300 in files.values()


def test_a_numbered_version_and_a_range_resume(alice_api, registered):
    url = "/api/v1/models/resnet-prod/versions/1/download"
    whole = body(alice_api.get(url))
    assert whole == body(alice_api.get(f"/api/v1/checkpoints/{registered[0].uuid}/download"))
    first = alice_api.get(url)
    tail = alice_api.get(url, HTTP_RANGE="bytes=700-", HTTP_IF_RANGE=first["ETag"])
    assert tail.status_code == 206
    assert tail["Content-Range"] == f"bytes 700-{len(whole) - 1}/{len(whole)}"
    assert body(tail) == whole[700:]
    past = alice_api.get(url, HTTP_RANGE=f"bytes={len(whole) + 5}-")
    assert past.status_code == 416


@pytest.mark.parametrize(
    ("query", "accept", "media"),
    [
        ("?format=tgz", None, "application/gzip"),
        ("?format=zip", None, "application/zip"),
        ("", "application/zip", "application/zip"),
    ],
)
def test_the_same_formats_as_a_checkpoint(alice_api, registered, query, accept, media):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = alice_api.get(f"/api/v1/models/resnet-prod/versions/2/download{query}", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == media
    data = body(response)
    if media == "application/zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert any(name.endswith("code/model_def.py") for name in archive.namelist())
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            assert any(name.endswith("code/model_def.py") for name in archive.getnames())


def test_errors_are_json(alice_api, registered):
    for url, status in [
        ("/api/v1/models/nope/versions/latest/download", 404),
        ("/api/v1/models/resnet-prod/versions/9/download", 404),
        ("/api/v1/models/resnet-prod/versions/abc/download", 404),
        ("/api/v1/models/resnet-prod/versions/1/download?format=rar", 406),
    ]:
        response = alice_api.get(url)
        assert response.status_code == status, url
        assert response["Content-Type"] == "application/json"
        assert response.json()["message"]


def test_files_missing_from_storage_are_an_error_not_a_500(alice_api, registered):
    Checkpoint.objects.filter(pk=registered[2].pk).update(state="DELETED")
    response = alice_api.get("/api/v1/models/resnet-prod/versions/latest/download")
    assert response.status_code == 410
