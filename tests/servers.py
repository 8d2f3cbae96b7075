"""Real S3 (moto), GCS (emulator) and Azure (Azurite) servers over HTTP, one per session;
and what every test of a service needs: ``missing_service``, ``free_port``, ``wait_for``.

Each server runs in its own child process (moto's ThreadedMotoServer, the
gcp-storage-emulator's ``create_server``) on a free 127.0.0.1 port, started once per
session by the fixtures ``moto_server``, ``gcs_server`` and ``azurite_server`` of
``tests/conftest.py``, so that one instance serves every test package. Keeping them out of
the test process keeps their memory out of the download memory measurements, and their
threads off its GIL.

Azurite is the npm package, installed under ``var/azurite`` by ``make azurite`` (CI runs
it). It listens on a free port (``--blobPort 0``, the port read from its start-up line),
keeps blobs in memory, sends no telemetry, and runs in a temporary working directory
(``--location`` cannot be combined with ``--inMemoryPersistence``, so the temporary
directory is its cwd instead); it is terminated at the end of the session.
"""

from __future__ import annotations

import functools
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import pytest

from tests import REPO

REQUIRE_SERVICES = os.environ.get("CKPTWEB_REQUIRE_SERVICES") == "1"

ACCESS_KEY = "AKIACKPTWEBTESTACCESS"
SECRET_KEY = "sEcReT-ckptweb-9f2c41d7e0b6-never-shown"
BUCKET = "ckptweb-test"
STARTUP_TIMEOUT = 30

#: Azurite's documented, public development account (not a secret anywhere but here).
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: Secrets that no response, page, log line or error may contain.
SECRETS = (ACCESS_KEY, SECRET_KEY, AZURE_KEY)
AZURITE_BIN = REPO / "var/azurite/node_modules/.bin/azurite-blob"

MOTO_SCRIPT = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("ready", server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""

GCS_SCRIPT = """
import logging, socket, sys
logging.disable(logging.CRITICAL)
from gcp_storage_emulator.server import create_server
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
server = create_server("127.0.0.1", port, in_memory=True)
server.start()
print("ready", port, flush=True)
sys.stdin.read()
"""


# --- services, ports, waiting --------------------------------------------------------------


def missing_service(reason: str):
    """Skip with ``reason``, or fail when CI demands real services (CKPTWEB_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (CKPTWEB_REQUIRE_SERVICES=1, so this is a failure)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 60, message: str = "condition", log=None, every=0.05):
    """Poll ``condition()`` every ``every`` seconds until it is truthy and return its value;
    after ``timeout`` seconds fail, quoting the end of ``log()`` (a server's or worker's log)
    when given. The one poll loop of the suite: servers, workers and runs are waited for
    with it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    tail = log()[-6000:] if log else ""
    pytest.fail(f"timed out after {timeout}s waiting for {message}\n{tail}")


# --- servers -------------------------------------------------------------------------------


def terminate(process: subprocess.Popen, timeout: float = 5) -> None:
    """SIGTERM ``process``, then SIGKILL it if it has not exited within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class ServerProcess:
    """A server in a child process that exits when its stdin closes."""

    name: str
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stdin.close()
        terminate(self.process)


def start_server(name: str, script: str) -> ServerProcess | str:
    """Start a server script; return it, or a reason why it did not come up."""
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout=STARTUP_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        process.kill()
        process.wait()
        return f"{name} did not start within {STARTUP_TIMEOUT}s (output: {line.strip()!r})"
    server = ServerProcess(name, process, int(line.split()[1]))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass
    return server


@dataclass
class AzuriteServer:
    """The Azurite blob service (a Node process) on a free port."""

    process: subprocess.Popen
    port: int
    workdir: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};"
            f"AccountKey={AZURE_KEY};BlobEndpoint={self.endpoint};"
        )

    def stop(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_azurite() -> AzuriteServer | str:
    """Start azurite-blob on a free 127.0.0.1 port; return it or why it did not start."""
    binary = str(AZURITE_BIN) if AZURITE_BIN.exists() else shutil.which("azurite-blob")
    if not binary:
        return "Azurite is not installed (run `make azurite`, which uses npm)"
    workdir = tempfile.mkdtemp(prefix="ckptweb-azurite-")
    process = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--extentMemoryLimit",
            "2048",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AZURITE_DISABLE_TELEMETRY": "1", "NO_UPDATE_NOTIFIER": "1"},
    )
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    seen = []
    while selector.select(timeout=STARTUP_TIMEOUT):
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        match = re.search(r"listens on http://127\.0\.0\.1:(\d+)", line)
        if match:
            # Drain its output in the background so that it never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return AzuriteServer(process, int(match.group(1)), workdir)
    process.kill()
    process.wait()
    shutil.rmtree(workdir, ignore_errors=True)
    return f"Azurite did not start within {STARTUP_TIMEOUT}s (output: {seen[-3:]!r})"


class MotoS3:
    """moto's ThreadedMotoServer on a fixed port, so it can be stopped and started again
    (its buckets live in this process and survive a restart)."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@functools.lru_cache
def azure_admin_client(connection_string: str):
    """An azure-storage-blob service client of our own, independent of the backend."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(connection_string)


@functools.lru_cache
def s3_admin_client(endpoint: str):
    """A boto3 client of our own, independent of the backend under test."""
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


@functools.lru_cache
def gcs_admin_client():
    """An anonymous google-cloud-storage client talking to the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials())
