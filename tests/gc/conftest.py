"""Fixtures of the GC tests: file stores, eager task execution, and a real Celery worker.

The ``gc_worker`` fixture starts real ``celery worker --pool=solo`` subprocesses on Redis
and the PostgreSQL *test* database (pytest-django's ``test_<NAME>``), so tests using it
must be ``@pytest.mark.django_db(transaction=True)``: the worker only sees committed rows.
Without PostgreSQL or Redis those tests skip (fail under CKPTWEB_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.gc.workers import REDIS_URL, Workers, redis_up, reset_broker_pool
from tests.servers import missing_service
from tests.stores import Store


@pytest.fixture
def fs_location(tmp_path) -> Store:
    """A shared_fs location under this test's tmp_path, for an experiment's config to name."""
    root = tmp_path / "ckpts"
    root.mkdir()
    return Store.shared_fs(root)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Context manager that runs on_commit callbacks (hence eager GC tasks) on exit."""

    def runner():
        return django_capture_on_commit_callbacks(execute=True)

    return runner


@pytest.fixture
def immutable_dir():
    """Make a directory undeletable even for root (``chattr +i``); undone at teardown.

    Root ignores permission bits, so ``chmod`` proves nothing here; the immutable flag of
    ext2/3/4, XFS and btrfs stops unlink/rmdir inside the directory for every user.
    """
    marked: list[Path] = []

    def mark(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            missing_service(f"chattr +i is not supported here: {done.stderr.strip()}")
        marked.append(path)

    def unmark(path: Path) -> None:
        subprocess.run(["chattr", "-i", str(path)], check=True)
        marked.remove(path)

    mark.unmark = unmark
    yield mark
    for path in list(marked):
        subprocess.run(["chattr", "-i", str(path)], check=False)


# --- services ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gc_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two Celery workers on Redis and the PostgreSQL test database; tasks go to them.

    Stopped before pytest-django drops the test database (this fixture depends on it).
    """
    from django.db import connection

    from ckptweb.celery import app

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
    queue = app.conf.task_default_queue
    workers = Workers(database_url, queue, tmp_path_factory.mktemp("celery"))
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False)
    reset_broker_pool(app)
    workers.start(purge=True)
    try:
        yield workers
    finally:
        workers.stop()
        app.conf.update(saved)
        reset_broker_pool(app)
