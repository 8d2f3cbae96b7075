"""One abstraction of "a storage the test writes files into": ``Store``.

A Store is one storage location (a shared_fs directory, or a prefix in an S3/GCS bucket or
an Azure container) plus raw access to its objects with the provider's own client, never
through ckptweb's backends: a test plants files with ``put``/``put_files`` and checks what
is left with ``exists``/``listing``. There are two ways to get one:

* ``make_store(kind, request, host, prefix)``: a location with its StorageConfig row
  (``store.config``), for the tests of backends, downloads and scans. The fixtures
  ``store``, ``isolated_store``, ``fs_store``, ``s3_store``, ``gcs_store`` and
  ``azure_store`` (tests/conftest.py) give these.
* ``Store.shared_fs(root)``, ``Store.s3(...)``, ``Store.gcs(...)``: a location that an
  experiment's config names (``store.storage_section``); the services add its StorageConfig
  when the experiment is created (``tests.factories.experiment_on``). The fixtures
  ``fs_location``, ``s3_location`` and ``gcs_location`` (tests/experiments/conftest.py)
  give these.

Every response and log line of a storage test is watched (``SecretWatch``, fixture
``secret_watch``): a test fails if a secret appears in one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid as uuid_lib
from dataclasses import dataclass
from pathlib import Path

from tests.servers import (
    ACCESS_KEY,
    BUCKET,
    SECRET_KEY,
    SECRETS,
    azure_admin_client,
    gcs_admin_client,
    s3_admin_client,
)

# --- one storage location ------------------------------------------------------------------


@dataclass
class Store:
    """A storage location plus raw access to its objects (the provider's own client).

    ``kind`` is the storage type (shared_fs, s3, gcs, azure); ``root`` the directory of a
    shared_fs location; ``admin`` the provider's client (boto3's S3 client, a GCS client,
    an Azure ContainerClient) and ``bucket``/``prefix`` where an object store keeps the
    location's ``<uuid>/`` directories. ``config`` is its StorageConfig when it has one;
    ``storage_section`` the ``checkpoint_storage`` section naming it when it has none yet.
    """

    kind: str
    config: object = None
    admin: object = None
    root: Path | None = None
    bucket: str = BUCKET
    prefix: str = ""
    storage_section: dict | None = None

    # --- locations that an experiment's config names ---

    @classmethod
    def shared_fs(cls, root: Path) -> Store:
        """Files under a directory, as the shared_fs backend lays them out."""
        root = Path(root)
        return cls(
            "shared_fs", root=root, storage_section={"type": "shared_fs", "host_path": str(root)}
        )

    @classmethod
    def s3(cls, client, bucket: str, endpoint_url: str, prefix: str = "ckpts") -> Store:
        """Objects in an S3 bucket (moto in the tests) under ``<prefix>/<uuid>/``."""
        section = {
            "type": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "endpoint_url": endpoint_url,
            "access_key": "gc-test-access-key",
            "secret_key": "gc-test-secret-key-do-not-leak",
        }
        return cls("s3", admin=client, bucket=bucket, prefix=prefix, storage_section=section)

    @classmethod
    def gcs(cls, client, bucket: str, prefix: str) -> Store:
        """Blobs in a GCS bucket (the emulator in the tests) under ``<prefix>/<uuid>/``."""
        section = {"type": "gcs", "bucket": bucket, "prefix": prefix}
        return cls("gcs", admin=client, bucket=bucket, prefix=prefix, storage_section=section)

    # --- raw access ---

    def key(self, checkpoint_uuid, path: str) -> str:
        """The object key of ``path`` in checkpoint ``checkpoint_uuid``'s directory."""
        return f"{self.prefix + '/' if self.prefix else ''}{checkpoint_uuid}/{path}"

    def put(self, checkpoint_uuid, path: str, data: bytes) -> None:
        """Write one object/file directly, bypassing our backend."""
        if self.kind == "shared_fs":
            target = self.root / str(checkpoint_uuid) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        else:
            self.put_raw_key(self.key(checkpoint_uuid, path), data)

    def put_files(self, checkpoint_uuid, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            self.put(checkpoint_uuid, path, data)

    def put_file(self, checkpoint_uuid, path: str, source: Path) -> None:
        """Write one (large) file from disk, streamed."""
        if self.kind == "shared_fs":
            target = self.root / str(checkpoint_uuid) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
        elif self.kind == "s3":
            self.admin.upload_file(str(source), self.bucket, self.key(checkpoint_uuid, path))
        elif self.kind == "azure":
            with open(source, "rb") as stream:
                self.admin.upload_blob(
                    self.key(checkpoint_uuid, path), stream, overwrite=True, max_concurrency=4
                )
        else:
            blob = self.admin.bucket(self.bucket).blob(
                self.key(checkpoint_uuid, path), chunk_size=64 * 1024 * 1024
            )
            blob.upload_from_filename(str(source))

    def put_raw_key(self, key: str, data: bytes) -> None:
        """Write an object under an arbitrary key (object stores only)."""
        if self.kind == "s3":
            self.admin.put_object(Bucket=self.bucket, Key=key, Body=data)
        elif self.kind == "azure":
            self.admin.upload_blob(key, data, overwrite=True)
        else:
            self.admin.bucket(self.bucket).blob(key).upload_from_string(data)

    def exists(self, checkpoint_uuid, path: str) -> bool:
        """Is the file still there (checked with the provider's own client)?"""
        key = self.key(checkpoint_uuid, path)
        if self.kind == "shared_fs":
            return (self.root / str(checkpoint_uuid) / path).exists()
        if self.kind == "s3":
            listing = self.admin.list_objects_v2(Bucket=self.bucket, Prefix=key)
            return any(o["Key"] == key for o in listing.get("Contents", []))
        if self.kind == "azure":
            return self.admin.get_blob_client(key).exists()
        return self.admin.bucket(self.bucket).blob(key).exists()

    def listing(self) -> set[tuple[str, str]]:
        """Every (checkpoint uuid, relative path) present."""
        found = set()
        if self.kind == "shared_fs":
            for dirpath, _dirs, names in os.walk(self.root):
                for name in names:
                    relative = os.path.relpath(os.path.join(dirpath, name), self.root)
                    checkpoint_uuid, _, path = relative.partition(os.sep)
                    found.add((checkpoint_uuid, path.replace(os.sep, "/")))
            return found
        base = f"{self.prefix}/" if self.prefix else ""
        if self.kind == "s3":
            paginator = self.admin.get_paginator("list_objects_v2")
            names = (
                obj["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=base)
                for obj in page.get("Contents", [])
            )
        elif self.kind == "azure":
            names = (blob.name for blob in self.admin.list_blobs(name_starts_with=base))
        else:
            names = (blob.name for blob in self.admin.list_blobs(self.bucket, prefix=base))
        for name in names:
            checkpoint_uuid, _, path = name[len(base) :].partition("/")
            found.add((checkpoint_uuid, path))
        return found


def unique_prefix() -> str:
    return f"runs/{uuid_lib.uuid4().hex[:10]}"


#: The session fixture of each object store's test server (tests/conftest.py).
SERVERS = {"s3": "moto_server", "gcs": "gcs_server", "azure": "azurite_server"}


def make_store(kind: str, request, host: Path, prefix: str) -> Store:
    """A Store of ``kind`` with its StorageConfig; S3/GCS/Azure start their server (or
    skip) on first use."""
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
    return Store(kind, config, admin=admin, prefix=config.prefix.strip("/"))


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


class LogRecorder(logging.Handler):
    """A logging handler that records every line into a SecretWatch."""

    def __init__(self, watch: SecretWatch):
        super().__init__(level=logging.DEBUG)
        self.watch = watch

    def emit(self, record):
        with contextlib.suppress(Exception):  # a recorder must never break a test
            self.watch.recorded.append((f"log {record.name}", self.format(record).encode()))


# --- helpers -------------------------------------------------------------------------------


def consume(response) -> bytes:
    """The full body of a (streaming or not) response.

    The test client closes a streamed response once it is exhausted (without firing
    ``close_old_connections``, which would drop the test transaction's connection).
    """
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content
