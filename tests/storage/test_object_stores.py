"""Provider-specific behaviour of the S3 and GCS backends, against the real test servers."""

from __future__ import annotations

import json
import uuid as uuid_lib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from storage.backends import get_backend
from storage.backends.base import StorageError, StoredFile, TransientStorageError
from storage.backends.gcs import batch_errors
from storage.backends.object_store import ObjectStoreBackend
from storage.models import StorageConfig
from tests.servers import ACCESS_KEY, BUCKET, SECRET_KEY

pytestmark = pytest.mark.usefixtures("secret_watch")


def put_many(store, checkpoint_uuid, count: int) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: store.put(checkpoint_uuid, f"shard-{i:05d}", b"x"), range(count)))


def put_checkpoints(store, count: int) -> list[str]:
    """``count`` new checkpoints of three one-byte files ``f0``-``f2``; their sorted uuids."""
    names = sorted(str(uuid_lib.uuid4()) for _ in range(count))
    files = [(name, f"f{i}") for name in names for i in range(3)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda args: store.put(*args, b"x"), files))
    return names


# --- S3 ------------------------------------------------------------------------------------


def test_s3_deletes_more_than_1000_keys_in_batches(s3_store):
    first, second = str(uuid_lib.uuid4()), str(uuid_lib.uuid4())
    put_many(s3_store, first, 1200)
    put_many(s3_store, second, 30)
    backend = get_backend(s3_store.config)
    sizes = []
    backend.client.meta.events.register(
        "before-call.s3.DeleteObjects",
        lambda params, **kw: sizes.append(len(params["body"].count(b"<Key>") * [0])),
    )
    result = backend.delete_checkpoints([first, second])
    assert result.ok, result.errors
    assert result.deleted_files == 1230
    assert result.requests == 2
    assert sizes == [1000, 230]
    assert backend.list_files(first) == [] and backend.list_files(second) == []


def count_calls(backend, operation: str) -> list:
    calls = []
    backend.client.meta.events.register(f"before-call.s3.{operation}", lambda **kw: calls.append(1))
    return calls


@pytest.mark.parametrize("stride", [1, 7])
def test_s3_lists_many_checkpoints_with_few_requests(s3_store, stride):
    """Deleting most of a storage lists it by ranges, not once per checkpoint; only the
    chosen checkpoints' files go, whether they are dense (stride 1) or sparse (stride 7).
    1,200 keys: listings run past one page, so continuing inside a checkpoint and jumping
    to the next one are both exercised."""
    names = put_checkpoints(s3_store, 400)
    doomed = names[::stride][: 350 if stride == 1 else None]
    backend = get_backend(s3_store.config)
    listings = count_calls(backend, "ListObjectsV2")
    result = backend.delete_checkpoints(doomed)
    assert result.ok, result.errors
    assert result.deleted_files == 3 * len(doomed)
    if stride == 1:
        assert len(listings) <= 3  # 1,050 keys of 350 neighbours: two pages of 1,000
    else:
        assert len(listings) <= len(doomed)
    remaining = {
        obj["Key"].split("/")[-2]
        for page in backend.iter_objects(backend.base_prefix)
        for obj in page.get("Contents", [])
    }
    assert remaining == set(names) - set(doomed)


def test_s3_copes_with_a_store_that_ignores_start_after(s3_store):
    """Some S3-compatible stores ignore StartAfter; deletion must still finish, exactly."""
    names = sorted(str(uuid_lib.uuid4()) for _ in range(6))
    for name in names:
        s3_store.put(name, "f", b"x")
    backend = get_backend(s3_store.config)
    backend.client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **kw: params.pop("StartAfter", None),
    )
    result = backend.delete_checkpoints(names[2:5])
    assert result.ok, result.errors
    assert result.deleted_files == 3
    assert [bool(backend.list_files(name)) for name in names] == [1, 1, 0, 0, 0, 1]


def test_s3_reports_per_key_errors_from_the_response(s3_store, monkeypatch):
    """A DeleteObjects reply naming failed keys (parsed from the real XML) is reported."""
    checkpoint_uuid = str(uuid_lib.uuid4())
    s3_store.put_files(checkpoint_uuid, {"a.bin": b"a", "locked.bin": b"l"})
    backend = get_backend(s3_store.config)
    locked = s3_store.key(checkpoint_uuid, "locked.bin")

    def spare_locked(params, **kwargs):  # the server "refuses" this key: keep it
        params["Delete"]["Objects"] = [o for o in params["Delete"]["Objects"] if o["Key"] != locked]

    def report_locked(parsed, **kwargs):
        parsed.setdefault("Errors", []).append(
            {"Key": locked, "Code": "AccessDenied", "Message": "Access Denied"}
        )

    events = backend.client.meta.events
    events.register("provide-client-params.s3.DeleteObjects", spare_locked, unique_id="spare")
    events.register("after-call.s3.DeleteObjects", report_locked, unique_id="report")
    try:
        result = backend.delete_checkpoints([checkpoint_uuid])
    finally:
        events.unregister("provide-client-params.s3.DeleteObjects", unique_id="spare")
        events.unregister("after-call.s3.DeleteObjects", unique_id="report")
    assert result.object_errors == {locked: "AccessDenied Access Denied"}
    assert "locked.bin" in result.errors[checkpoint_uuid]
    assert [f.path for f in backend.list_files(checkpoint_uuid)] == ["locked.bin"]


def unreachable_s3(**fields) -> StorageConfig:
    return StorageConfig(
        name="unreachable",
        type="s3",
        bucket=BUCKET,
        endpoint_url="http://127.0.0.1:9",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        **fields,
    )


def test_s3_connection_errors_are_transient_and_secret_free(db):
    backend = get_backend(unreachable_s3())
    with pytest.raises(TransientStorageError) as caught:
        backend.check_connection()
    assert SECRET_KEY not in str(caught.value) and ACCESS_KEY not in str(caught.value)


def test_s3_missing_bucket_is_a_storage_error(s3_store):
    s3_store.config.bucket = "no-such-bucket"
    with pytest.raises(StorageError) as caught:
        get_backend(s3_store.config).check_connection()
    assert not isinstance(caught.value, TransientStorageError)
    assert "NoSuchBucket" in str(caught.value)


def test_s3_throttling_and_5xx_are_transient(s3_store):
    from botocore.exceptions import ClientError

    backend = get_backend(s3_store.config)
    for code, status in [("SlowDown", 503), ("InternalError", 500), ("Throttling", 400)]:
        exc = ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "X"
        )
        assert isinstance(backend.translate(exc, "x"), TransientStorageError)
    exc = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "X"
    )
    assert type(backend.translate(exc, "x")) is StorageError


def test_s3_error_text_is_scrubbed(s3_store):
    backend = get_backend(s3_store.config)
    error = backend.translate(RuntimeError(f"signature with {SECRET_KEY} by {ACCESS_KEY}"), "x")
    assert SECRET_KEY not in str(error) and ACCESS_KEY not in str(error)
    assert "***" in str(error)


def test_s3_without_keys_uses_the_default_chain(s3_store, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    s3_store.config.access_key = s3_store.config.secret_key = ""
    backend = get_backend(s3_store.config)
    credentials = backend.client._request_signer._credentials
    assert credentials.access_key == "from-env"
    backend.check_connection()


# --- ranged listings, as real GCS answers them ---------------------------------------------


class InclusiveStore(ObjectStoreBackend):
    """Keys in memory, listed like GCS: from ``startOffset`` inclusive, ``maxResults`` a page.

    (gcp-storage-emulator ignores both, so the jumps of the ranged listing are checked here
    and against moto, which honours ``StartAfter``.)"""

    storage_type = StorageConfig.Type.GCS
    parameters = ("bucket", "prefix")
    delete_batch_size = 100
    ranged_listing = True

    def __init__(self, keys):
        super().__init__(StorageConfig(type="gcs", bucket="b", prefix="runs"))
        self.keys = sorted(keys)
        self.listings = 0

    def translate(self, exc, action):
        return StorageError(f"{action}: {exc}")

    def iter_entries(self, prefix):
        self.listings += 1
        return iter([StoredFile(key, 1) for key in self.keys if key.startswith(prefix)])

    def list_range(self, start_after, max_keys):
        self.listings += 1
        after = [key for key in self.keys if key >= start_after]
        return after[:max_keys], len(after) > max_keys

    def delete_objects(self, keys):
        gone = set(keys)
        self.keys = [key for key in self.keys if key not in gone]
        return {}

    stat = open = check_connection = iter_checkpoint_dirs = None


@pytest.mark.parametrize("stride", [1, 7])
def test_ranged_listing_with_an_inclusive_start_is_exact(stride):
    """A start key that is itself listed again (continuing inside a checkpoint) is not
    deleted twice; dense targets cost a few listings, sparse ones at most one each."""
    names = sorted(str(uuid_lib.uuid4()) for _ in range(400))
    store = InclusiveStore(f"runs/{name}/f{i}" for name in names for i in range(3))
    doomed = names[::stride][: 350 if stride == 1 else None]
    result = store.delete_checkpoints(doomed)
    assert result.ok, result.errors
    assert result.deleted_files == 3 * len(doomed)
    assert store.listings <= (3 if stride == 1 else len(doomed))
    assert {key.split("/")[1] for key in store.keys} == set(names) - set(doomed)


# --- GCS -----------------------------------------------------------------------------------


def test_gcs_deletes_in_batches_of_100(gcs_store, monkeypatch):
    checkpoint_uuid = str(uuid_lib.uuid4())
    put_many(gcs_store, checkpoint_uuid, 101)
    backend = get_backend(gcs_store.config)
    result = backend.delete_checkpoints([checkpoint_uuid])
    assert result.ok, result.errors
    assert result.requests == 2
    assert result.deleted_files == 101
    assert backend.list_files(checkpoint_uuid) == []


def sent_requests(backend, monkeypatch) -> list[tuple[str, str]]:
    """(method, url) of every HTTP request the GCS client sends from now on."""
    session = backend.client._http
    original = session.request
    sent = []

    def request(method, url, *args, **kwargs):
        sent.append((method, url))
        return original(method, url, *args, **kwargs)

    monkeypatch.setattr(session, "request", request)
    return sent


def test_gcs_deletes_many_checkpoints_with_ranged_listings(gcs_store, monkeypatch):
    """Deleting every other one of 150 checkpoints (3 files each): listings by range
    (``startOffset``/``maxResults``; the emulator answers the whole prefix in one page) and
    batches of 100 deletes: about 0.05 requests per checkpoint, not one listing each."""
    names = put_checkpoints(gcs_store, 150)
    doomed = names[::2]
    backend = get_backend(gcs_store.config)
    sent = sent_requests(backend, monkeypatch)
    result = backend.delete_checkpoints(doomed)
    assert result.ok, result.errors
    assert (result.deleted_files, result.requests) == (225, 3)
    listings = [url for method, url in sent if method == "GET"]
    batches = [url for method, url in sent if "/batch/" in url]
    assert len(listings) == 1, listings
    assert "startOffset=" in listings[0] and "maxResults=" in listings[0]
    assert len(batches) == 3 and len(sent) == 4
    assert len(sent) / len(doomed) < 0.06
    remaining = {entry.path.split("/")[-2] for entry in backend.iter_entries(backend.base_prefix)}
    assert remaining == set(names) - set(doomed)


def fake_response(status: int, body: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body else b""
    return response


def test_gcs_batch_errors_are_per_object():
    responses = [
        fake_response(204),
        fake_response(404, {"error": {"message": "No such object"}}),
        fake_response(403, {"error": {"message": "caller lacks storage.objects.delete"}}),
        fake_response(503, {"error": {"message": "backend error"}}),
    ]
    errors = batch_errors(["a", "b", "c", "d", "e"], responses)
    assert errors == {
        "c": "HTTP 403: caller lacks storage.objects.delete",
        "d": "HTTP 503: backend error",
        "e": "no response in the batch reply",
    }


def test_gcs_uses_the_emulator_anonymously(gcs_store):
    from google.auth.credentials import AnonymousCredentials

    backend = get_backend(gcs_store.config)
    assert isinstance(backend.client._credentials, AnonymousCredentials)
    assert backend.client.api_endpoint.startswith("http://127.0.0.1:")


def test_gcs_unreachable_is_transient(gcs_store, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr("storage.backends.gcs.RETRY_DEADLINE", 1.0)
    with pytest.raises(TransientStorageError):
        get_backend(gcs_store.config).check_connection()


def test_gcs_missing_bucket_is_a_storage_error(gcs_store):
    gcs_store.config.bucket = "no-such-bucket"
    with pytest.raises(StorageError):
        get_backend(gcs_store.config).check_connection()
