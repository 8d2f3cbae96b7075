"""Real S3 (moto) and GCS (emulator) servers over HTTP, shared by the whole test session.

Each server runs in its own child process (moto's ThreadedMotoServer, the
gcp-storage-emulator's ``create_server``) on a free 127.0.0.1 port, started once per
session: the fixtures are made visible to every test package by ``tests/conftest.py`` so
that one instance serves them all. Keeping them out of the test process keeps their
memory out of the download memory measurements, and their threads off its GIL.
"""

from __future__ import annotations

import functools
import os
import selectors
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import missing_service

ACCESS_KEY = "AKIACKPTWEBTESTACCESS"
SECRET_KEY = "sEcReT-ckptweb-9f2c41d7e0b6-never-shown"
SECRETS = (ACCESS_KEY, SECRET_KEY)
BUCKET = "ckptweb-test"
STARTUP_TIMEOUT = 30

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
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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
