"""HTTP behaviour of the download endpoints that does not depend on the backend."""

from __future__ import annotations

import os
import uuid as uuid_lib
from urllib.parse import quote

import pytest
from django.http import FileResponse
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

from ckptweb.accounts.services import create_token
from experiments.api.downloads import CheckpointFileView, choose_format, parse_byte_range
from tests.stores import consume

pytestmark = pytest.mark.usefixtures("secret_watch")

FILES = {"weights.bin": bytes(range(256)) * 100, "config.yaml": b"lr: 0.1\n"}


@pytest.fixture
def checkpoint(fs_store, make_checkpoint):
    return make_checkpoint(fs_store, FILES)


def download(checkpoint) -> str:
    return f"/api/v1/checkpoints/{checkpoint.uuid}/download"


def test_it_requires_authentication(checkpoint, api):
    for url in (download(checkpoint), f"/api/v1/checkpoints/{checkpoint.uuid}/files/config.yaml"):
        response = api.get(url)
        assert response.status_code == 401
        assert "message" in response.json()


def test_it_accepts_a_token(checkpoint, bob):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_token(bob, 'test')[1]}")
    response = client.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/config.yaml")
    assert response.status_code == 200
    assert consume(response) == FILES["config.yaml"]


def test_it_accepts_a_session(checkpoint, client, bob):
    client.force_login(bob)
    response = client.get(download(checkpoint))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "accept", ["application/json", "text/html", "application/x-rar", "application/zip;q=0"]
)
def test_unsupported_accept_is_406(checkpoint, alice_api, accept):
    response = alice_api.get(download(checkpoint), HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert "application/x-tar" in response.json()["message"]


def test_unsupported_format_is_406(checkpoint, alice_api):
    response = alice_api.get(download(checkpoint) + "?format=rar")
    assert response.status_code == 406
    assert "format" in response.json()["message"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "tar"),
        ("*/*", "tar"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "tar"),
        ("application/zip;q=0.5, application/gzip", "tgz"),
        ("application/json, application/zip;q=0.1", "zip"),
        ("application/x-tar", "tar"),
    ],
)
def test_format_negotiation(accept, expected):
    assert choose_format(None, accept) == expected


def test_query_format_wins_over_accept():
    assert choose_format("zip", "application/x-tar") == "zip"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=90-500", (90, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=9-3", None),
        ("bytes=x-", None),
    ],
)
def test_range_parsing(header, expected):
    assert parse_byte_range(header, 100) == expected


def test_unsatisfiable_range_is_416(checkpoint, alice_api):
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/files/config.yaml"
    response = alice_api.get(url, HTTP_RANGE="bytes=500-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(FILES['config.yaml'])}"


def test_if_range_with_a_stale_etag_sends_everything(checkpoint, alice_api):
    whole = consume(alice_api.get(download(checkpoint)))
    first = alice_api.get(download(checkpoint))
    etag = first["ETag"]
    consume(first)
    response = alice_api.get(download(checkpoint), HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=etag)
    assert response.status_code == 206
    assert consume(response) == whole[100:]
    stale = alice_api.get(download(checkpoint), HTTP_RANGE="bytes=100-", HTTP_IF_RANGE='"old"')
    assert stale.status_code == 200
    assert consume(stale) == whole


def test_tar_etag_changes_when_files_change(checkpoint, alice_api, fs_store):
    before = alice_api.get(download(checkpoint))["ETag"]
    fs_store.put(checkpoint.uuid, "extra.txt", b"new")
    after = alice_api.get(download(checkpoint))["ETag"]
    assert before != after


def test_file_etag_allows_304(checkpoint, alice_api):
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/files/weights.bin"
    etag = alice_api.get(url)["ETag"]
    response = alice_api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304


def test_shared_fs_files_use_file_response(checkpoint, alice, alice_api):
    request = APIRequestFactory().get("/")
    force_authenticate(request, alice)
    response = CheckpointFileView.as_view()(request, uuid=checkpoint.uuid, path="weights.bin")
    assert isinstance(response, FileResponse)
    # The real file object, so a WSGI server's file_wrapper can use sendfile.
    assert response.file_to_stream.fileno() > 0
    # Not plain text nor a raster image: untrusted bytes download (storage/untrusted.py).
    assert response["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert b"".join(response.streaming_content) == FILES["weights.bin"]
    response.file_to_stream.close()  # not response.close(): that fires request_finished
    attachment = alice_api.get(
        f"/api/v1/checkpoints/{checkpoint.uuid}/files/weights.bin?download=1"
    )
    assert attachment["Content-Disposition"] == 'attachment; filename="weights.bin"'
    consume(attachment)


def test_unknown_checkpoint_is_404(db, alice_api):
    response = alice_api.get(f"/api/v1/checkpoints/{uuid_lib.uuid4()}/download")
    assert response.status_code == 404


def test_checkpoint_without_files_is_404(fs_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(fs_store, {})
    response = alice_api.get(download(checkpoint))
    assert response.status_code == 404
    assert "no files" in response.json()["message"]


def test_head_gives_length_without_body(checkpoint, alice_api):
    whole = consume(alice_api.get(download(checkpoint)))
    response = alice_api.head(download(checkpoint))
    assert response.status_code == 200
    assert int(response["Content-Length"]) == len(whole)


@pytest.fixture
def accel(settings):
    settings.CKPTWEB_ACCEL_REDIRECT_PREFIX = "/_ckptweb_files/"
    return settings


def test_accel_redirect_names_the_resolved_file_for_nginx(
    accel, fs_store, make_checkpoint, alice_api
):
    checkpoint = make_checkpoint(fs_store, {"code/my model.py": b"print(1)\n", **FILES})
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/files/code/my%20model.py"
    response = alice_api.get(url, HTTP_RANGE="bytes=2-")  # nginx answers the Range itself
    assert response.status_code == 200
    assert response.content == b""
    on_disk = os.path.realpath(fs_store.root / str(checkpoint.uuid) / "code" / "my model.py")
    assert response["X-Accel-Redirect"] == "/_ckptweb_files" + quote(on_disk)
    assert "%20model.py" in response["X-Accel-Redirect"]
    # The untrusted-content headers, for the nginx location to pass on (README).
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Content-Disposition"] == 'attachment; filename="my model.py"'


def test_accel_redirect_keeps_the_checks_before_it(accel, checkpoint, alice_api, bob_api):
    base = f"/api/v1/checkpoints/{checkpoint.uuid}/files"
    missing = alice_api.get(f"{base}/nope.bin")
    assert missing.status_code == 404 and "X-Accel-Redirect" not in missing
    assert "message" in missing.json()
    escape = alice_api.get(f"{base}/..%2F..%2Fetc%2Fpasswd")
    assert escape.status_code in (400, 404) and "X-Accel-Redirect" not in escape
    etag = alice_api.get(f"{base}/weights.bin")
    assert "X-Accel-Redirect" in etag


def test_accel_redirect_is_only_for_shared_fs(accel, s3_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(s3_store, FILES)
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/config.yaml")
    assert response.status_code == 200
    assert "X-Accel-Redirect" not in response
    assert consume(response) == FILES["config.yaml"]


def test_without_the_setting_files_stream_with_ranges(checkpoint, alice_api):
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/files/weights.bin"
    response = alice_api.get(url, HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert "X-Accel-Redirect" not in response
    assert consume(response) == FILES["weights.bin"][100:200]
