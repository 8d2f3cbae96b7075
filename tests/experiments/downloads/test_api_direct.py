"""Direct downloads: ``GET checkpoints/{uuid}/urls`` and ``files/{path}?redirect=1``.

The URLs are fetched with plain ``requests`` (no ckptweb, no credentials) from moto, the
GCS emulator and Azurite. What each store verifies:

* Azurite checks SAS signatures and expiry: an expired URL is refused with 403 (tested).
* moto checks neither the signature nor the expiry of presigned URLs, and the GCS
  emulator serves any ``/<bucket>/<object>`` URL without looking at the signature. For
  those two the tests check the signature independently (``verify_v4``: SigV4 with the
  secret key, GOOG4-RSA-SHA256 with the service account's public key) over the signed
  ``X-*-Date``/``X-*-Expires`` values, so a real S3/GCS refuses the URL after expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid as uuid_lib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests

from storage.backends.s3 import S3Backend
from tests.servers import SECRET_KEY

pytestmark = pytest.mark.usefixtures("secret_watch")

FILES = {
    "metadata.json": b'{"steps_completed": 3}',
    "model/weights.bin": bytes(range(256)) * 1000,
    "dir with space/ünï.txt": b"unicode",
}


@pytest.fixture(params=["s3", "gcs", "azure"])
def object_store(request, isolated_store):
    if request.param == "gcs":
        request.getfixturevalue("gcs_signing_key")
    return isolated_store(request.param)


def urls_of(api, checkpoint, query: str = ""):
    return api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/urls{query}")


def fetch(url: str, **headers) -> requests.Response:
    return requests.get(url, headers=headers, timeout=30)


# --- an independent check of V4 query signatures (S3 and GCS) -------------------------------


def _canonical_request(url: str, prefix: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(params.items())
        if k != f"{prefix}-Signature"
    )
    canonical = "\n".join(
        ["GET", parts.path, query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    return canonical, params


def verify_v4(url: str, public_key=None) -> datetime:
    """Check a SigV4 (S3) or GOOG4-RSA-SHA256 (GCS) URL's signature; return its expiry."""
    prefix = "X-Amz" if "X-Amz-Signature" in url else "X-Goog"
    canonical, params = _canonical_request(url, prefix)
    scope = params[f"{prefix}-Credential"].split("/", 1)[1]
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join([params[f"{prefix}-Algorithm"], params[f"{prefix}-Date"], scope, digest])
    signature = params[f"{prefix}-Signature"]
    if prefix == "X-Amz":
        date, region, service, _ = scope.split("/")
        key = f"AWS4{SECRET_KEY}".encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected), "SigV4 signature does not verify"
    else:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        public_key.verify(  # raises InvalidSignature
            bytes.fromhex(signature), to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    signed_at = datetime.strptime(params[f"{prefix}-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return signed_at + timedelta(seconds=int(params[f"{prefix}-Expires"]))


# --- the manifest --------------------------------------------------------------------------


def test_urls_fetch_every_file_straight_from_the_store(
    object_store, make_checkpoint, alice_api, request
):
    checkpoint = make_checkpoint(object_store, FILES)
    before = datetime.now(UTC)
    response = urls_of(alice_api, checkpoint, "?expires=600")
    assert response.status_code == 200, response.json()
    assert response["Cache-Control"] == "no-store"
    files = response.json()["files"]
    assert [(f["path"], f["size"]) for f in files] == sorted(
        (path, len(data)) for path, data in FILES.items()
    )
    for entry in files:
        expires_at = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
        assert before + timedelta(seconds=598) <= expires_at <= before + timedelta(seconds=602)
        got = fetch(entry["url"])
        assert got.status_code == 200, (entry["path"], got.status_code, got.text[:300])
        assert got.content == FILES[entry["path"]]
        assert SECRET_KEY not in entry["url"]
        if object_store.kind != "azure":
            key = request.getfixturevalue("gcs_signing_key") if object_store.kind == "gcs" else None
            assert abs((verify_v4(entry["url"], key) - expires_at).total_seconds()) <= 2
    weights = next(f for f in files if f["path"] == "model/weights.bin")
    part = fetch(weights["url"], Range="bytes=1000-1999")
    assert part.status_code == 206 and part.content == FILES["model/weights.bin"][1000:2000]


def test_the_default_lifetime_is_one_hour(object_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(object_store, {"a.bin": b"a"})
    (entry,) = urls_of(alice_api, checkpoint).json()["files"]
    expires_at = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
    assert abs((expires_at - datetime.now(UTC)).total_seconds() - 3600) < 5


def test_signing_needs_no_request_per_url(s3_store, make_checkpoint, alice_api, monkeypatch):
    files = {f"shard-{index}.bin": b"x" for index in range(40)}
    checkpoint = make_checkpoint(s3_store, files)
    sent = []

    def count(request, **kwargs):
        sent.append(request)

    client = S3Backend(s3_store.config).client
    client.meta.events.register("before-send.s3", count)
    try:
        response = urls_of(alice_api, checkpoint)
    finally:
        client.meta.events.unregister("before-send.s3", count)
    assert response.status_code == 200
    assert len(response.json()["files"]) == 40
    assert len(sent) == 1, [r.url for r in sent]  # the one listing


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?expires=0", "at least 1"),
        ("?expires=-5", "at least 1"),
        ("?expires=604801", "at most 604800"),
        ("?expires=soon", "whole number"),
        ("?expires=1e9", "whole number"),
    ],
)
def test_a_bad_expires_is_a_400_naming_it(s3_store, make_checkpoint, alice_api, query, words):
    checkpoint = make_checkpoint(s3_store, {"a.bin": b"a"})
    for url in (
        f"/api/v1/checkpoints/{checkpoint.uuid}/urls{query}",
        f"/api/v1/checkpoints/{checkpoint.uuid}/files/a.bin{query}&redirect=1",
    ):
        response = alice_api.get(url)
        assert response.status_code == 400, (url, response.content)
        message = response.json()["message"]
        assert message.startswith("expires:") and words in message, message


def test_seven_days_is_allowed(s3_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(s3_store, {"a.bin": b"a"})
    (entry,) = urls_of(alice_api, checkpoint, "?expires=604800").json()["files"]
    assert "X-Amz-Expires=604800" in entry["url"]


def test_shared_fs_answers_409_naming_the_reason(fs_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(fs_store, {"a.bin": b"a"})
    for url in (
        f"/api/v1/checkpoints/{checkpoint.uuid}/urls",
        f"/api/v1/checkpoints/{checkpoint.uuid}/files/a.bin?redirect=1",
    ):
        response = alice_api.get(url)
        assert response.status_code == 409
        assert "shared_fs storage has no direct URLs" in response.json()["message"]
    # Without redirect the file is still served by the server.
    assert alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/a.bin").status_code == 200


def test_anonymous_deleted_and_unknown(s3_store, make_checkpoint, api, alice_api):
    checkpoint = make_checkpoint(s3_store, {"a.bin": b"a"})
    assert urls_of(api, checkpoint).status_code == 401
    unknown = alice_api.get(f"/api/v1/checkpoints/{uuid_lib.uuid4()}/urls")
    assert unknown.status_code == 404
    gone = make_checkpoint(s3_store, {"a.bin": b"a"}, state="DELETED")
    assert urls_of(alice_api, gone).status_code == 410
    empty = make_checkpoint(s3_store, {})
    assert urls_of(alice_api, empty).status_code == 404


def test_gcs_without_signing_credentials_is_a_409(
    gcs_store, make_checkpoint, alice_api, monkeypatch
):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    checkpoint = make_checkpoint(gcs_store, {"a.bin": b"a"})
    response = urls_of(alice_api, checkpoint)
    assert response.status_code == 409
    assert "GOOGLE_APPLICATION_CREDENTIALS" in response.json()["message"]


# --- redirect ------------------------------------------------------------------------------


def test_redirect_is_a_302_to_a_presigned_url(object_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(object_store, FILES)
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/files/model/weights.bin?redirect=1"
    response = alice_api.get(url)
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    assert fetch(response["Location"]).content == FILES["model/weights.bin"]
    missing = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/nope.bin?redirect=1")
    assert missing.status_code == 404
    escaping = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/a/../../x?redirect=1")
    assert escaping.status_code in (400, 404)


# --- expiry --------------------------------------------------------------------------------


def test_azure_refuses_an_expired_url(azure_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(azure_store, {"a.bin": b"short-lived"})
    (entry,) = urls_of(alice_api, checkpoint, "?expires=1").json()["files"]
    assert fetch(entry["url"]).content == b"short-lived"
    time.sleep(2.2)
    refused = fetch(entry["url"])
    assert refused.status_code == 403, refused.text[:300]
    assert "AuthorizationFailure" in refused.text  # the same URL worked 2 s earlier


def test_azure_refuses_a_tampered_url(azure_store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(azure_store, {"a.bin": b"a"})
    (entry,) = urls_of(alice_api, checkpoint).json()["files"]
    tampered = entry["url"].replace("/a.bin?", "/b.bin?")
    assert fetch(tampered).status_code == 403


def test_s3_and_gcs_urls_are_signed_for_the_asked_lifetime(
    s3_store, gcs_store, gcs_signing_key, make_checkpoint, alice_api
):
    """moto and the GCS emulator do not check signatures or expiry (see the module
    docstring); the signature is verified here, with the signed lifetime inside it."""
    for store, key in ((s3_store, None), (gcs_store, gcs_signing_key)):
        checkpoint = make_checkpoint(store, {"a.bin": b"a"})
        (entry,) = urls_of(alice_api, checkpoint, "?expires=5").json()["files"]
        expiry = verify_v4(entry["url"], key)
        assert abs((expiry - datetime.now(UTC)).total_seconds() - 5) < 3
        forged = entry["url"].replace("Expires=5", "Expires=604800")
        with pytest.raises(Exception):  # noqa: B017, PT011 - a forged lifetime fails
            verify_v4(forged, key)
        # What the test stores do with it: they serve it, signature or not. (Should this
        # fail one day, the store verifies signatures: test its refusal instead.)
        assert fetch(forged).status_code == 200, f"{store.kind} now checks signatures"


# --- the checkpoint page -------------------------------------------------------------------


def test_the_page_offers_direct_links_only_on_object_stores(
    client, alice, s3_store, fs_store, make_checkpoint
):
    client.force_login(alice)
    on_s3 = make_checkpoint(s3_store, {"a.bin": b"a", "b/c.txt": b"c"})
    page = client.get(f"/checkpoints/{on_s3.uuid}/").content.decode()
    assert page.count('class="btn btn-sm direct-link"') == 2
    assert f'data-direct-urls="/api/v1/checkpoints/{on_s3.uuid}/urls"' in page
    assert 'data-direct-path="b/c.txt"' in page
    assert "X-Amz-Signature" not in page  # URLs are made on click, not embedded
    on_fs = make_checkpoint(fs_store, {"a.bin": b"a"})
    page = client.get(f"/checkpoints/{on_fs.uuid}/").content.decode()
    assert "direct-link" not in page and "data-direct-urls" not in page
