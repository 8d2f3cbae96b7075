"""Fixtures of the experiments' tests: storage locations an experiment's config names, eager
task execution and real Celery workers (the GC and registry tests share them), and a
checkpoint of alice's trial (the API and ingest tests share it).

The ``*_location`` fixtures give a ``tests.stores.Store`` without a StorageConfig yet:
build an experiment on one with ``tests.factories.experiment_on`` or
``tests.spec.spec_example``; the services add its StorageConfig.

The ``gc_worker`` fixture starts real ``celery worker --pool=solo`` subprocesses on Redis
and the PostgreSQL *test* database (pytest-django's ``test_<NAME>``), so tests using it
must be ``@pytest.mark.django_db(transaction=True)``: the worker only sees committed rows.
Without PostgreSQL or Redis those tests skip (fail under CKPTWEB_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import uuid

import pytest

from tests.experiments.gc.workers import REDIS_URL, Workers, redis_up, reset_broker_pool
from tests.factories import add_checkpoints
from tests.servers import BUCKET, MotoS3, gcs_admin_client, missing_service
from tests.stores import Store

# --- storage locations ---------------------------------------------------------------------


@pytest.fixture
def fs_location(tmp_path) -> Store:
    """A shared_fs location under this test's tmp_path, for an experiment's config to name."""
    root = tmp_path / "ckpts"
    root.mkdir()
    return Store.shared_fs(root)


@pytest.fixture
def s3_location() -> Store:
    """An S3 location on a fresh bucket of a moto server this test may stop and restart."""
    import boto3

    moto = MotoS3()
    moto.start()
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="gc-test-access-key",
        aws_secret_access_key="gc-test-secret-key-do-not-leak",
    )
    bucket = f"gc-test-{uuid.uuid4().hex[:12]}"  # moto's buckets outlive a test
    client.create_bucket(Bucket=bucket)
    store = Store.s3(client, bucket, moto.endpoint)
    store.moto = moto
    yield store
    moto.stop()


@pytest.fixture
def gcs_location(gcs_server) -> Store:
    """A GCS location (a prefix of its own in the emulator's bucket)."""
    return Store.gcs(gcs_admin_client(), BUCKET, f"gc-{uuid.uuid4().hex[:10]}")


# --- tasks ---------------------------------------------------------------------------------


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Context manager that runs on_commit callbacks (hence eager GC tasks) on exit."""

    def runner():
        return django_capture_on_commit_callbacks(execute=True)

    return runner


@pytest.fixture(scope="session")
def gc_workers(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two Celery workers on Redis and the PostgreSQL test database, started once, and the
    app's broker pointed at them.

    Stopped before pytest-django drops the test database (this fixture depends on it).
    Tasks go to them only inside a test that asks for ``gc_worker`` (eager elsewhere).
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        missing_service("GC worker tests need PostgreSQL: set DATABASE_URL=postgres://...")
    if not redis_up(REDIS_URL):
        missing_service(f"GC worker tests need Redis at {REDIS_URL}")

    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}"
        f"@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}"
        f"/{settings_dict['NAME']}"
    )
    # The app's default queue: Celery caches its queue map on first use, so a queue name
    # changed here would be ignored. The Redis database is this suite's own; stale messages
    # are purged when the first worker starts.
    from ckptweb.celery import app

    workers = Workers(database_url, app.conf.task_default_queue, tmp_path_factory.mktemp("celery"))
    saved = app.conf.broker_url
    app.conf.update(broker_url=REDIS_URL)
    reset_broker_pool(app)
    workers.start(purge=True)
    try:
        yield workers
    finally:
        workers.stop()
        app.conf.update(broker_url=saved)
        reset_broker_pool(app)


@pytest.fixture
def gc_worker(gc_workers):
    """The workers, with this test's tasks sent to them through Redis.

    Eager again after the test: a later test's GC run must not go to a worker that works
    on the shared test database while pytest-django empties it (a TRUNCATE racing a GC
    transaction deadlocks, and that test's flush fails).
    """
    from ckptweb.celery import app

    saved = app.conf.task_always_eager
    app.conf.update(task_always_eager=False)
    try:
        yield gc_workers
    finally:
        app.conf.update(task_always_eager=saved)


# --- data ----------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(trial):
    """A checkpoint of ``trial`` at steps 100 with loss 0.5."""
    return add_checkpoints(trial, [(100, 0.5)])[0]
