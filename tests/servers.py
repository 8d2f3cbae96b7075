"""Real S3 (moto), GCS (emulator) and Azure (Azurite) servers over HTTP, one per session.

Each server runs in its own child process (moto's ThreadedMotoServer, the
gcp-storage-emulator's ``create_server``) on a free 127.0.0.1 port, started once per
session: the fixtures are made visible to every test package by ``tests/conftest.py`` so
that one instance serves them all. Keeping them out of the test process keeps their
memory out of the download memory measurements, and their threads off its GIL.

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
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing_service

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
AZURITE_BIN = Path(__file__).resolve().parent.parent / "var/azurite/node_modules/.bin/azurite-blob"

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


@pytest.fixture(scope="session")
def moto_server():
    """moto's ThreadedMotoServer (S3 over HTTP), with the test bucket created."""
    server = start_server("moto S3 server", MOTO_SCRIPT)
    if isinstance(server, str):
        missing_service(server)
    s3_admin_client(server.endpoint).create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator (GCS JSON API over HTTP), with STORAGE_EMULATOR_HOST set."""
    server = start_server("gcp-storage-emulator", GCS_SCRIPT)
    if isinstance(server, str):
        missing_service(server)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.endpoint
    gcs_admin_client().create_bucket(BUCKET)
    yield server
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
    server.stop()


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


@pytest.fixture(scope="session")
def azurite_server():
    """Azurite's blob service over HTTP, with the test container created."""
    server = start_azurite()
    if isinstance(server, str):
        missing_service(server)
    azure_admin_client(server.connection_string).create_container(BUCKET)
    yield server
    server.stop()


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
