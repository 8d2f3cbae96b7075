"""ckptweb served by real gunicorn in a subprocess, on its own file SQLite database.

The attack tests on concurrency and crashes need what production has and the test
process lacks: several server processes writing one SQLite *file* (the test database is
in memory), tasks run in-process (no broker), and processes that can be SIGKILLed. Each
``AppServer`` gets a fresh ``CKPTWEB_DATA_DIR`` (database, secret key, default shared_fs
storage) and a free 127.0.0.1 port; ``DATABASE_URL`` and ``CELERY_BROKER_URL`` are removed
from its environment, so it always runs the embedded SQLite default — on the PostgreSQL CI
pass too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests import REPO
from tests.servers import free_port, wait_for

#: A setup script for ``manage.py shell``: a user with a token, printed as JSON.
SETUP = """
import json
from django.contrib.auth import get_user_model
from ckptweb.accounts.services import create_token
user = get_user_model().objects.create_user("load", password="load-pass-123", is_staff=True)
print("TOKEN", json.dumps(create_token(user, "test")[1]))
"""


class AppServer:
    """``gunicorn ckptweb.wsgi`` (``workers`` × ``threads``) on a data dir of its own."""

    def __init__(self, data_dir: Path, workers: int = 2, threads: int = 4, **env):
        self.data_dir = data_dir
        self.workers = workers
        self.threads = threads
        self.extra_env = env
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = data_dir / f"gunicorn-{self.port}.log"
        self.token = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")
        }
        env.update(
            CKPTWEB_DATA_DIR=str(self.data_dir),
            DJANGO_SETTINGS_MODULE="ckptweb.settings",
            PYTHONPATH=str(REPO),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            **self.extra_env,
        )
        return env

    def manage(self, *args: str, script: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env(),
            input=script,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def prepare(self) -> None:
        """Migrate the fresh database and create a staff user with an API token."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput", "-v0")
        out = self.manage("shell", script=SETUP)
        self.token = json.loads(out.split("TOKEN", 1)[1].strip())

    def start(self, *gunicorn_args: str) -> None:
        """Start gunicorn and wait until it answers."""
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "ckptweb.wsgi",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers), "--threads", str(self.threads),
                "--timeout", "120", "--graceful-timeout", "5",
                *gunicorn_args,
            ],
            cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        wait_for(self.answers, 60, "gunicorn to answer", log=self.log_text, every=0.2)

    def answers(self) -> bool:
        """Whether the server answers an API call (raises if gunicorn has exited)."""
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()[-4000:]}")
        try:
            self.request("GET", "/api/v1/experiments")
        except OSError:
            return False
        return True

    def request(self, method: str, path: str, body=None, timeout: float = 60):
        """(status, parsed JSON or None) of one API call with the token."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw[:500]

    def kill(self) -> None:
        """SIGKILL the arbiter and its workers (the whole session): no cleanup at all."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def query(self, sql: str) -> list[tuple]:
        """Read the server's SQLite file directly (read-only)."""
        import sqlite3

        uri = f"file:{self.data_dir / 'ckptweb.sqlite3'}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=20) as connection:
            return connection.execute(sql).fetchall()
