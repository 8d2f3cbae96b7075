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

import logging
from pathlib import Path

import pytest

from tests.stores import LogRecorder, SecretWatch, Store, make_store, unique_prefix


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory) -> Path:
    """A shared_fs host path that lives for the whole session (like the buckets do)."""
    return tmp_path_factory.mktemp("shared")


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
    handler = LogRecorder(watch)
    logging.getLogger().addHandler(handler)
    yield watch
    logging.getLogger().removeHandler(handler)
    assert watch.leaks() == [], f"a secret appeared in {watch.leaks()}"
