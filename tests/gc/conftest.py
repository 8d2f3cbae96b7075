"""Fixtures of the GC tests: file stores, eager task execution, and a real Celery worker.

The ``gc_worker`` fixture starts real ``celery worker --pool=solo`` subprocesses on Redis
and the PostgreSQL *test* database (pytest-django's ``test_<NAME>``), so tests using it
must be ``@pytest.mark.django_db(transaction=True)``: the worker only sees committed rows.
Without PostgreSQL or Redis those tests skip (fail under CKPTWEB_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.servers import missing_service, wait_for
from tests.stores import Store

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CKPTWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
WORKER_SETTINGS = "tests.gc.worker_settings"
#: Seconds the test worker pauses before each storage delete call (see worker_hooks), so a
#: test can stop the storage or kill the worker while a run is between batches.
DELETE_DELAY = "0.5"


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


def _redis_up(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


class Workers:
    """Real Celery worker subprocesses (solo pool) consuming one private queue."""

    def __init__(self, database_url: str, queue: str, log_dir: Path, count: int = 2):
        self.database_url = database_url
        self.queue = queue
        self.log_dir = log_dir
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=REDIS_URL,
            DJANGO_SETTINGS_MODULE=WORKER_SETTINGS,
            CKPTWEB_TEST_DELETE_DELAY=DELETE_DELAY,
            CONN_MAX_AGE="0",
            PYTHONPATH=str(REPO),
        )
        return env

    def start(self, purge: bool = False) -> None:
        """Start ``count`` workers and wait until each says it is ready.

        With ``purge`` the first one drops messages a previous session left in the queue.
        """
        for number in range(self.count):
            log = self.log_dir / f"worker-{number}-{len(self.logs)}.log"
            self.logs.append(log)
            with open(log, "wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable, "-m", "celery", "-A", "ckptweb", "worker",
                            "--pool=solo", "--concurrency=1", "-Q", self.queue,
                            "-n", f"gc{number}-{uuid.uuid4().hex[:6]}@%h",
                            "--without-gossip", "--without-mingle", "-l", "INFO",
                            *(["--purge"] if purge and number == 0 else []),
                        ],
                        cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        deadline = time.monotonic() + 120
        for proc, log in zip(self.procs, self.logs[-self.count :], strict=True):
            wait_for(
                lambda proc=proc, log=log: (
                    proc.poll() is not None or b" ready." in log.read_bytes()
                ),
                max(deadline - time.monotonic(), 0),
                "a celery worker to start",
                log=log.read_text,
                every=0.1,
            )
            if b" ready." not in log.read_bytes():
                raise RuntimeError(f"celery worker did not start:\n{log.read_text()}")

    def kill(self) -> None:
        """SIGKILL every worker: no cleanup, no acknowledgement, nothing."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        self.procs = []

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL whatever is left."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())


@pytest.fixture(scope="session")
def gc_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two Celery workers on Redis and the PostgreSQL test database; tasks go to them.

    Stopped before pytest-django drops the test database (this fixture depends on it).
    """
    from django.db import connection

    from ckptweb.celery import app

    if connection.vendor != "postgresql":
        missing_service("GC worker tests need PostgreSQL: set DATABASE_URL=postgres://...")
    if not _redis_up(REDIS_URL):
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


def reset_broker_pool(app) -> None:
    """Forget the app's cached broker connections, so the next send uses ``broker_url``.

    Celery builds its connection and producer pools once, from the broker URL of the moment
    (an earlier eager test may have done so); this is what Celery itself does after a fork.
    """
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
