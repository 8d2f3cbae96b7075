"""Fixtures of the storage tests: real S3 (moto), GCS (emulator), Azure (Azurite) over HTTP.

Each server runs in its own child process (moto's ThreadedMotoServer, the
gcp-storage-emulator's ``create_server``) on a free 127.0.0.1 port, started once per
session. Keeping them out of the test process keeps their memory out of the download
memory measurements, and their threads off this process's GIL.

``store`` is parametrized over the four backends; it gives a StorageConfig plus a
``put`` that writes objects with the provider's own client (not through our backend).
Every response and log line of a storage test is watched (``secret_watch``): a test fails
if a secret appears in one; ``test_secrets`` provokes the riskiest cases on purpose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid as uuid_lib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import (  # noqa: F401 - shared with the storage tests' modules
    ACCESS_KEY,
    AZURE_KEY,
    BUCKET,
    SECRET_KEY,
    SECRETS,
    ServerProcess,
    azure_admin_client,
    gcs_admin_client,
    s3_admin_client,
)

# --- one storage per backend ---------------------------------------------------------------


@dataclass
class Store:
    """A StorageConfig under test plus raw access to its objects."""

    kind: str
    config: object
    admin: object = None
    root: Path | None = None
    written: dict = field(default_factory=dict)

    def key(self, checkpoint_uuid, path: str) -> str:
        prefix = self.config.prefix.strip("/")
        return f"{prefix + '/' if prefix else ''}{checkpoint_uuid}/{path}"

    def put(self, checkpoint_uuid, path: str, data: bytes) -> None:
        """Write one object/file directly, bypassing our backend."""
        if self.kind == "shared_fs":
            target = self.root / str(checkpoint_uuid) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        else:
            self.put_raw_key(self.key(checkpoint_uuid, path), data)

    def put_file(self, checkpoint_uuid, path: str, source: Path) -> None:
        """Write one (large) file from disk, streamed."""
        if self.kind == "shared_fs":
            target = self.root / str(checkpoint_uuid) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
        elif self.kind == "s3":
            self.admin.upload_file(str(source), BUCKET, self.key(checkpoint_uuid, path))
        elif self.kind == "azure":
            with open(source, "rb") as stream:
                self.admin.upload_blob(
                    self.key(checkpoint_uuid, path), stream, overwrite=True, max_concurrency=4
                )
        else:
            blob = self.admin.bucket(BUCKET).blob(
                self.key(checkpoint_uuid, path), chunk_size=64 * 1024 * 1024
            )
            blob.upload_from_filename(str(source))

    def put_files(self, checkpoint_uuid, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            self.put(checkpoint_uuid, path, data)

    def put_raw_key(self, key: str, data: bytes) -> None:
        """Write an object under an arbitrary key (object stores only)."""
        if self.kind == "s3":
            self.admin.put_object(Bucket=BUCKET, Key=key, Body=data)
        elif self.kind == "azure":
            self.admin.upload_blob(key, data, overwrite=True)
        else:
            self.admin.bucket(BUCKET).blob(key).upload_from_string(data)

    def exists(self, checkpoint_uuid, path: str) -> bool:
        """Is the file still there (checked with the provider's own client)?"""
        if self.kind == "shared_fs":
            return (self.root / str(checkpoint_uuid) / path).exists()
        if self.kind == "s3":
            listing = self.admin.list_objects_v2(
                Bucket=BUCKET, Prefix=self.key(checkpoint_uuid, path)
            )
            return any(
                o["Key"] == self.key(checkpoint_uuid, path) for o in listing.get("Contents", [])
            )
        if self.kind == "azure":
            return self.admin.get_blob_client(self.key(checkpoint_uuid, path)).exists()
        return self.admin.bucket(BUCKET).blob(self.key(checkpoint_uuid, path)).exists()


def unique_prefix() -> str:
    return f"runs/{uuid_lib.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory) -> Path:
    """A shared_fs host path that lives for the whole session (like the buckets do)."""
    return tmp_path_factory.mktemp("shared")


#: The session fixture of each object store's test server.
SERVERS = {"s3": "moto_server", "gcs": "gcs_server", "azure": "azurite_server"}


def make_store(kind: str, request, host: Path, prefix: str) -> Store:
    """Build a Store of ``kind``; S3/GCS/Azure start their server (or skip) on first use."""
    from storage.models import StorageConfig

    name = f"{kind.replace('_', '-')}-{uuid_lib.uuid4().hex[:8]}"
    if kind == "shared_fs":
        (host / "ckpts").mkdir(parents=True, exist_ok=True)
        config = StorageConfig.objects.create(
            name=name, type="shared_fs", host_path=str(host), storage_path="ckpts"
        )
        return Store(kind, config, root=host / "ckpts")
    server = request.getfixturevalue(SERVERS[kind])
    if kind == "s3":
        fields = {"bucket": BUCKET, "endpoint_url": server.endpoint}
        fields.update(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        admin = s3_admin_client(server.endpoint)
    elif kind == "azure":
        fields = {"container": BUCKET, "connection_string": server.connection_string}
        admin = azure_admin_client(server.connection_string).get_container_client(BUCKET)
    else:
        fields = {"bucket": BUCKET}
        admin = gcs_admin_client()
    config = StorageConfig.objects.create(name=name, type=kind, prefix=prefix, **fields)
    return Store(kind, config, admin=admin)


@pytest.fixture(params=["shared_fs", "s3", "gcs", "azure"])
def store(request, db, shared_root) -> Store:
    """The backend contract fixture: one Store per backend type.

    Its location is the same for the whole session, so that files seeded once (see
    ``make_checkpoint(..., uuid=...)``) serve every test; tests that need an empty
    storage use ``fs_store``/``s3_store``/``gcs_store`` or ``isolated_store``.
    """
    return make_store(request.param, request, shared_root, "contract")


@pytest.fixture
def isolated_store(request, db, tmp_path):
    """``isolated_store(kind)``: a Store of ``kind`` in a location of its own."""
    return lambda kind: make_store(kind, request, tmp_path, unique_prefix())


def isolated_store_of(kind: str):
    """A fixture giving a Store of ``kind`` in a location of its own."""

    @pytest.fixture
    def isolated(isolated_store) -> Store:
        return isolated_store(kind)

    return isolated


#: ``fs_store`` serves the tests that are about HTTP, not about a backend.
fs_store = isolated_store_of("shared_fs")
s3_store = isolated_store_of("s3")
gcs_store = isolated_store_of("gcs")
azure_store = isolated_store_of("azure")


# --- checkpoints ---------------------------------------------------------------------------

#: (kind, location) of checkpoint directories already written this session.
SEEDED: set[tuple[str, str, str]] = set()


@pytest.fixture
def make_checkpoint(alice):
    """``make_checkpoint(store, files, state=...)``: rows plus files in the store."""
    from experiments.models import Checkpoint, Experiment, Trial

    def make(store: Store, files=None, state="COMPLETED", steps=10, uuid=None):
        """Rows for a checkpoint plus its files; with ``uuid``, files are seeded only once."""
        experiment = Experiment.objects.create(
            owner=alice, name="storage test", searcher_metric="loss", storage=store.config
        )
        trial = Trial.objects.create(experiment=experiment)
        files = files or {}
        checkpoint = Checkpoint.objects.create(
            trial=trial,
            steps_completed=steps,
            state=state,
            resources={path: len(data) for path, data in files.items()},
            size_bytes=sum(len(data) for data in files.values()),
            **({"uuid": uuid} if uuid else {}),
        )
        seed = (store.kind, str(store.root), store.key(checkpoint.uuid, ""))
        if uuid is None or seed not in SEEDED:
            store.put_files(checkpoint.uuid, files)
            SEEDED.add(seed)
        return checkpoint

    return make


# --- secret watch --------------------------------------------------------------------------


def without_sigv4_key_ids(text: bytes) -> bytes:
    """``text`` minus the access key *ID* where a presigned S3 URL must name it.

    SigV4 query signing puts the key ID in ``X-Amz-Credential=<id>/<date>/...`` of every
    presigned URL (AWS documents the ID as an identifier, not a secret); anywhere else the
    ID still counts as a leak, and the secret key counts everywhere.
    """
    for prefix in (b"X-Amz-Credential=", b"X-Amz-Credential%3D"):
        for slash in (b"%2F", b"/"):
            text = text.replace(prefix + ACCESS_KEY.encode() + slash, prefix + b"<id>" + slash)
    return text


class SecretWatch:
    """The responses and log lines of one test, and where any of them carried a secret."""

    def __init__(self):
        self.recorded: list[tuple[str, bytes]] = []
        self.streamed_leaks: list[str] = []

    def responses(self) -> list[str]:
        """Where each recorded response went: ``"GET /path -> 200 headers"``."""
        return [where for where, _text in self.recorded if " -> " in where]

    def leaks(self) -> list[str]:
        """Where a secret appeared (the key ID in a presigned URL's credential excepted)."""
        found = [
            where
            for where, text in self.recorded
            for secret in SECRETS
            if secret.encode() in without_sigv4_key_ids(text)
        ]
        return found + self.streamed_leaks

    def scan_stream(self, chunks, where: str):
        """Pass a streamed body through, noting any secret split across chunks too."""
        tail = b""
        needles = [secret.encode() for secret in SECRETS]
        width = max(len(needle) for needle in needles)
        for chunk in chunks:
            window = tail + chunk
            if any(needle in window for needle in needles):
                self.streamed_leaks.append(where)
            tail = window[-width:]
            yield chunk


class _LogRecorder(logging.Handler):
    def __init__(self, watch: SecretWatch):
        super().__init__(level=logging.DEBUG)
        self.watch = watch

    def emit(self, record):
        with contextlib.suppress(Exception):  # a recorder must never break a test
            self.watch.recorded.append((f"log {record.name}", self.format(record).encode()))


@pytest.fixture(autouse=True)
def secret_watch(monkeypatch):
    """Record the headers and body of every response (and every log line) of a storage test;
    the test fails at teardown if any of them carried a secret."""
    from django.core.handlers.base import BaseHandler

    watch = SecretWatch()
    original = BaseHandler.get_response

    def get_response(self, request):
        response = original(self, request)
        where = f"{request.method} {request.get_full_path()} -> {response.status_code}"
        headers = "\n".join(f"{k}: {v}" for k, v in response.items()).encode()
        watch.recorded.append((where + " headers", headers))
        if response.streaming:
            response.streaming_content = watch.scan_stream(response.streaming_content, where)
        else:
            watch.recorded.append((where + " body", bytes(response.content)))
        return response

    monkeypatch.setattr(BaseHandler, "get_response", get_response)
    handler = _LogRecorder(watch)
    logging.getLogger().addHandler(handler)
    yield watch
    logging.getLogger().removeHandler(handler)
    assert watch.leaks() == [], f"a secret appeared in {watch.leaks()}"


# --- helpers -------------------------------------------------------------------------------


def consume(response) -> bytes:
    """The full body of a (streaming or not) response.

    The test client closes a streamed response once it is exhausted (without firing
    ``close_old_connections``, which would drop the test transaction's connection).
    """
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content
