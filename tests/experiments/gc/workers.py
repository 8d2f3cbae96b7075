"""Real Celery workers for the GC tests (the ``gc_worker`` fixture starts them).

``celery worker --pool=solo`` subprocesses on Redis and the PostgreSQL *test* database,
with the settings of ``worker_settings`` (small batches, quick retries, and
``worker_hooks`` imported so that every storage delete waits ``DELETE_DELAY`` first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from experiments.models import GCRun
from tests import REPO
from tests.servers import wait_for

REDIS_URL = os.environ.get("CKPTWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
WORKER_SETTINGS = "tests.experiments.gc.worker_settings"
#: Seconds the test worker pauses before each storage delete call (see worker_hooks), so a
#: test can stop the storage or kill the worker while a run is between batches.
DELETE_DELAY = "0.5"


def redis_up(url: str) -> bool:
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


def reset_broker_pool(app) -> None:
    """Forget the app's cached broker connections, so the next send uses ``broker_url``.

    Celery builds its connection and producer pools once, from the broker URL of the moment
    (an earlier eager test may have done so); this is what Celery itself does after a fork.
    """
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


def finished(run_id: int):
    """The run if it has finished (``finished_at`` set), else None."""
    return GCRun.objects.filter(pk=run_id, finished_at__isnull=False).first()
