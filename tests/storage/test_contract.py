"""The backend contract: every storage type (shared_fs, S3 via moto, GCS via the emulator,
Azure via Azurite) passes the same listing, reading, download, safety and deletion tests,
over HTTP."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid as uuid_lib
import zipfile

import pytest
from django.urls import reverse

from ckptweb.lib.paths import UnsafePath
from experiments import downloads
from storage.backends import get_backend
from storage.backends.base import FileNotFoundInStorage, StorageError
from tests.stores import consume

pytestmark = pytest.mark.usefixtures("secret_watch")

FILES = {
    "metadata.json": b'{"steps_completed": 10}',
    "model/state-dict.pth": bytes(range(256)) * 4000 + b"tail",
    "code/train.py": b"print('hello')\n",
    "empty.bin": b"",
    "deep/a/b/c/d.txt": b"d" * 513,
    "café ☕.txt": b"unicode name",
}


def sha256s(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def download_url(checkpoint, **query) -> str:
    url = reverse("checkpoint-download", kwargs={"uuid": checkpoint.uuid})
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def file_url(checkpoint, path: str) -> str:
    return f"/api/v1/checkpoints/{checkpoint.uuid}/files/{path}"


#: The read-only checkpoint every contract test shares (its files are written once).
CONTRACT_UUID = "0c0ffee0-0000-4000-8000-00000000c0de"


@pytest.fixture
def checkpoint(store, make_checkpoint):
    return make_checkpoint(store, FILES, uuid=CONTRACT_UUID)


# --- backend interface ---------------------------------------------------------------------


def test_it_lists_files_with_sizes(store, checkpoint):
    files = get_backend(store.config).list_files(str(checkpoint.uuid))
    assert [(f.path, f.size) for f in files] == sorted(
        (path, len(data)) for path, data in FILES.items()
    )
    assert all(f.etag for f in files)


def test_it_lists_nothing_for_an_unknown_checkpoint(store):
    assert get_backend(store.config).list_files(str(uuid_lib.uuid4())) == []
    listed = get_backend(store.config).list_directory(str(uuid_lib.uuid4()))
    assert (listed.files, listed.unsafe) == ([], 0)


def test_its_directory_listing_is_the_file_listing(store, checkpoint):
    backend = get_backend(store.config)
    listed = backend.list_directory(str(checkpoint.uuid))
    as_files = [(f.path, f.size) for f in backend.list_files(str(checkpoint.uuid))]
    assert [(f.path, f.size) for f in listed.files] == as_files
    assert listed.unsafe == 0


def test_it_reads_whole_files_and_ranges(store, checkpoint):
    backend = get_backend(store.config)
    data = FILES["model/state-dict.pth"]
    with backend.open(str(checkpoint.uuid), "model/state-dict.pth") as reader:
        assert reader.read() == data
    for start, end in [(0, 1), (1, 1000), (999_000, None), (5, len(data)), (7, len(data) + 50)]:
        reader = backend.open(str(checkpoint.uuid), "model/state-dict.pth", start, end)
        got = b"".join(iter(lambda r=reader: r.read(65536), b""))
        reader.close()
        assert got == data[start:end], (start, end)


def test_it_reports_missing_files(store, checkpoint):
    backend = get_backend(store.config)
    with pytest.raises(FileNotFoundInStorage):
        backend.open(str(checkpoint.uuid), "nope.bin")
    with pytest.raises(FileNotFoundInStorage):
        backend.stat(str(checkpoint.uuid), "model")  # a "directory" is not a file


ESCAPING_PATHS = ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\x00b", "", "a//b", "./a"]


def test_backend_refuses_escaping_paths(store, checkpoint):
    backend = get_backend(store.config)
    for path in ESCAPING_PATHS:
        with pytest.raises(UnsafePath):
            backend.open(str(checkpoint.uuid), path)
        with pytest.raises(UnsafePath):
            backend.stat(str(checkpoint.uuid), path)


def test_backend_refuses_non_uuid_checkpoint_names(store):
    backend = get_backend(store.config)
    for name in ["..", "../other", "{12345678-1234-5678-1234-567812345678}", "x"]:
        with pytest.raises(UnsafePath):
            backend.list_files(name)


def test_it_checks_the_connection(store):
    get_backend(store.config).check_connection()


def test_it_streams_checkpoint_dirs(store, make_checkpoint):
    first = make_checkpoint(store, {"a": b"1"})
    second = make_checkpoint(store, {"b/c": b"2"})
    names = set(get_backend(store.config).iter_checkpoint_dirs())
    assert {str(first.uuid), str(second.uuid)} <= names


# --- downloads over HTTP -------------------------------------------------------------------


def extract(fmt: str, data: bytes) -> dict[str, bytes]:
    """Unpack an archive into {path: bytes} with the standard library."""
    if fmt == "zip":
        archive = zipfile.ZipFile(io.BytesIO(data))
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}
    mode = "r:gz" if fmt == "tgz" else "r:"
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as archive:
        members = archive.getmembers()
        assert all(m.isfile() and not m.name.startswith(("/", "..")) for m in members)
        return {m.name: archive.extractfile(m).read() for m in members}


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("tar", "application/x-tar"), ("tgz", "application/gzip"), ("zip", "application/zip")],
)
def test_archive_round_trip(store, checkpoint, alice_api, fmt, media_type):
    response = alice_api.get(download_url(checkpoint, format=fmt))
    assert response.status_code == 200
    assert response["Content-Type"] == media_type
    assert response["Content-Disposition"] == (f'attachment; filename="{checkpoint.uuid}.{fmt}"')
    data = consume(response)
    assert sha256s(extract(fmt, data)) == sha256s(FILES)
    if fmt == "tar":
        assert int(response["Content-Length"]) == len(data)
        assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [("application/x-tar", "tar"), ("application/gzip", "tgz"), ("application/zip", "zip")],
)
def test_archive_format_from_accept(store, checkpoint, alice_api, accept, fmt):
    response = alice_api.get(download_url(checkpoint), HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    assert sha256s(extract(fmt, consume(response))) == sha256s(FILES)


def test_tar_download_resumes_from_the_middle(store, checkpoint, alice_api):
    whole = consume(alice_api.get(download_url(checkpoint)))
    for cut in (1, 511, 512, 700, len(whole) // 2, len(whole) - 1):
        head = consume(alice_api.get(download_url(checkpoint), HTTP_RANGE=f"bytes=0-{cut - 1}"))
        response = alice_api.get(download_url(checkpoint), HTTP_RANGE=f"bytes={cut}-")
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes {cut}-{len(whole) - 1}/{len(whole)}"
        tail = consume(response)
        assert int(response["Content-Length"]) == len(tail)
        assert head + tail == whole, cut


def test_tar_range_in_the_middle(store, checkpoint, alice_api):
    whole = consume(alice_api.get(download_url(checkpoint)))
    response = alice_api.get(download_url(checkpoint), HTTP_RANGE="bytes=1000-600000")
    assert response.status_code == 206
    assert consume(response) == whole[1000:600001]


def test_file_download_with_range(store, checkpoint, alice_api):
    data = FILES["model/state-dict.pth"]
    response = alice_api.get(file_url(checkpoint, "model/state-dict.pth"))
    assert response.status_code == 200
    assert consume(response) == data
    assert int(response["Content-Length"]) == len(data)
    assert response["Accept-Ranges"] == "bytes"
    assert response.get("ETag") or response.get("Last-Modified")

    response = alice_api.get(file_url(checkpoint, "model/state-dict.pth"), HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert consume(response) == data[10:20]

    response = alice_api.get(file_url(checkpoint, "model/state-dict.pth"), HTTP_RANGE="bytes=-4")
    assert consume(response) == b"tail"


def test_file_download_content_types(store, checkpoint, alice_api):
    response = alice_api.get(file_url(checkpoint, "metadata.json"))
    assert response["Content-Type"] == "application/json"
    assert consume(response) == FILES["metadata.json"]
    response = alice_api.get(file_url(checkpoint, "code/train.py"))
    assert response["Content-Type"] == "text/x-python"
    response = alice_api.get(file_url(checkpoint, "empty.bin"))
    assert response.status_code == 200 and consume(response) == b""


TRAVERSAL_URLS = [
    "../../etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "a/%2E%2E/%2E%2E/x",
    "/etc/passwd",
    "model\\..\\..\\x",
    "model%5c..%5cx",
    "metadata.json%00.txt",
    "./metadata.json",
    "model//state-dict.pth",
]


def test_traversal_attempts_are_refused(store, checkpoint, alice_api):
    for path in TRAVERSAL_URLS:
        response = alice_api.get(file_url(checkpoint, path))
        assert response.status_code == 400, path
        assert "message" in response.json()


def test_missing_file_is_404(store, checkpoint, alice_api):
    response = alice_api.get(file_url(checkpoint, "model/missing.pth"))
    assert response.status_code == 404
    assert "message" in response.json()


@pytest.mark.parametrize("state", ["DELETING", "DELETED"])
def test_deleted_checkpoint_is_410(store, make_checkpoint, alice_api, state):
    checkpoint = make_checkpoint(store, {"a.bin": b"x"}, state=state)
    for url in (download_url(checkpoint), file_url(checkpoint, "a.bin")):
        response = alice_api.get(url)
        assert response.status_code == 410
        assert state.lower() in response.json()["message"]


def test_unsafe_object_keys_are_never_served(store, make_checkpoint, alice_api):
    checkpoint = make_checkpoint(store, {"ok.txt": b"ok"})
    if store.kind != "shared_fs":  # object stores accept any key; our backend must not
        if store.kind == "s3":  # the GCS emulator cannot store such a name at all
            store.put_raw_key(store.key(checkpoint.uuid, "../escaped.txt"), b"bad")
        store.put_raw_key(store.key(checkpoint.uuid, "a//b.txt"), b"bad")
        store.put_raw_key(store.key(checkpoint.uuid, "dir/"), b"")
    else:
        outside = store.root.parent / "outside.txt"
        outside.write_bytes(b"bad")
        (store.root / str(checkpoint.uuid) / "link.txt").symlink_to(outside)
    files = downloads.checkpoint_files(checkpoint)
    assert [f.path for f in files] == ["ok.txt"]
    names = extract("tar", consume(alice_api.get(download_url(checkpoint))))
    assert names == {"ok.txt": b"ok"}
    # GC's listing says what it had to skip, so a skipped file is never taken for deleted.
    listed = get_backend(store.config).list_directory(str(checkpoint.uuid))
    assert [(f.path, f.size) for f in listed.files] == [("ok.txt", 2)]
    assert listed.unsafe >= 1


# --- deletion ------------------------------------------------------------------------------


def test_it_deletes_checkpoints(store, make_checkpoint):
    doomed = make_checkpoint(store, FILES)
    kept = make_checkpoint(store, {"keep.bin": b"k"})
    never_existed = str(uuid_lib.uuid4())
    result = get_backend(store.config).delete_checkpoints([str(doomed.uuid), never_existed])
    assert result.ok, result.errors
    assert result.deleted_files == len(FILES)
    assert get_backend(store.config).list_files(str(doomed.uuid)) == []
    assert not store.exists(doomed.uuid, "model/state-dict.pth")
    assert store.exists(kept.uuid, "keep.bin")


def count_requests(monkeypatch, backend) -> dict[str, int]:
    """Count the listing and delete requests a backend sends (one per primitive call)."""
    counts = {"listings": 0, "deletes": 0}

    def counting(name, kind):
        original = getattr(backend, name)

        def call(*args, **kwargs):
            counts[kind] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(backend, name, call)

    counting("iter_entries", "listings")
    counting("list_range", "listings")
    counting("delete_objects", "deletes")
    return counts


def test_deleting_many_checkpoints_costs_few_requests(store, isolated_store, monkeypatch):
    """40 neighbouring checkpoints of 2 files: S3 and GCS list them by ranges (one page,
    not one listing per checkpoint), Azure lists each once; every store deletes them in one
    batch. shared_fs counts one removal per checkpoint.

    The location is the test's own: the shared contract location holds other tests'
    checkpoints between these, and how many pages they take depends on their number.
    """
    store = isolated_store(store.kind)
    names = sorted(str(uuid_lib.uuid4()) for _ in range(40))
    for name in names:
        store.put_files(name, {"a.bin": b"a", "b/c.bin": b"c"})
    backend = get_backend(store.config)
    if store.kind == "shared_fs":
        result = backend.delete_checkpoints(names)
        assert result.ok, result.errors
        assert (result.deleted_files, result.requests) == (80, 40)
        return
    counts = count_requests(monkeypatch, backend)
    result = backend.delete_checkpoints(names)
    assert result.ok, result.errors
    assert result.deleted_files == 80
    assert result.requests == counts["deletes"] == 1
    if backend.ranged_listing:
        assert counts["listings"] == 1, counts
    else:  # Azure: no listing from a start key
        assert counts["listings"] == len(names), counts
    assert all(backend.list_files(name) == [] for name in names)


def fail_one_object(monkeypatch, store, backend, doomed_key: str, checkpoint_uuid) -> str:
    """Make deleting one object fail as the provider would report it (per object).

    Returns a word the error must contain. On Azure the failure is real: a lease held on
    the blob makes Azurite refuse its deletion inside the batch.
    """
    if store.kind == "azure":
        blob = store.admin.get_blob_client(store.key(checkpoint_uuid, doomed_key))
        blob.acquire_lease(lease_duration=-1)
        return "lease"
    if store.kind == "shared_fs":
        original = backend.remove_file

        def remove_file(full):
            if full.endswith(doomed_key):
                raise PermissionError(13, "Permission denied")
            original(full)

        monkeypatch.setattr(backend, "remove_file", remove_file)
        return "denied"
    original = backend.delete_objects

    def delete_objects(keys):
        failing = [key for key in keys if key.endswith(doomed_key)]
        errors = original([key for key in keys if key not in failing])
        errors.update(dict.fromkeys(failing, "AccessDenied Access Denied"))
        return errors

    monkeypatch.setattr(backend, "delete_objects", delete_objects)
    return "denied"


def test_delete_reports_per_object_errors(store, make_checkpoint, monkeypatch):
    doomed = make_checkpoint(store, FILES)
    other = make_checkpoint(store, {"x.bin": b"x"})
    backend = get_backend(store.config)
    word = fail_one_object(monkeypatch, store, backend, "model/state-dict.pth", doomed.uuid)
    result = backend.delete_checkpoints([str(doomed.uuid), str(other.uuid)])
    assert set(result.errors) == {str(doomed.uuid)}
    assert "model/state-dict.pth" in result.errors[str(doomed.uuid)]
    assert word in result.errors[str(doomed.uuid)].lower()
    assert [key for key in result.object_errors if key.endswith("model/state-dict.pth")]
    assert result.deleted_files == len(FILES) - 1 + 1
    assert store.exists(doomed.uuid, "model/state-dict.pth")
    assert not store.exists(doomed.uuid, "code/train.py")
    assert not store.exists(other.uuid, "x.bin")


def test_storage_errors_become_json(store, checkpoint, alice_api, monkeypatch):
    backend_class = type(get_backend(store.config))

    def broken(self, checkpoint_uuid):
        raise StorageError("the bucket exploded")

    monkeypatch.setattr(backend_class, "list_files", broken)
    response = alice_api.get(download_url(checkpoint))
    assert response.status_code == 502
    assert response.json()["message"] == "the bucket exploded"
