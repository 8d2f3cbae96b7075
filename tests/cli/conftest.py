"""Fixtures of the CLI tests: the real ``ckpt`` executable against ``live_server``."""

import http.client
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from experiments import services
from tests.factories import make_experiment, report_with_files

CKPT = Path(sys.executable).with_name("ckpt")


@pytest.fixture
def ckpt_executable():
    if not CKPT.exists():
        pytest.fail(f"{CKPT} is missing: run `.venv/bin/pip install -e . --no-deps`")
    return CKPT


@pytest.fixture
def token(transactional_db, alice):
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=alice).key


@pytest.fixture
def run_ckpt(ckpt_executable, live_server, token, tmp_path):
    """Run ``ckpt ARGS`` as alice against the live server; returns CompletedProcess."""

    def run(*args, url=None, input=None, token_value=None, timeout=60):
        env = {
            **os.environ,
            "CKPTWEB_URL": url or live_server.url,
            "CKPTWEB_TOKEN": token if token_value is None else token_value,
        }
        return subprocess.run(
            [str(ckpt_executable), *map(str, args)],
            env=env,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )

    return run


@pytest.fixture
def populated(transactional_db, alice, default_storage):
    """alice's experiment: two trials, five checkpoints with real files (two unmeasured)."""
    experiment = make_experiment(alice, default_storage, name="cli-exp")
    first = services.create_trial(experiment)
    second = services.create_trial(experiment)
    rows = [
        (first, 100, 0.9),
        (first, 200, 0.5),
        (first, 300, None),
        (second, 100, 0.7),
        (second, 200, None),
    ]
    checkpoints = [
        report_with_files(
            default_storage,
            trial,
            steps,
            {"state-dict.pth": os.urandom(1000 + steps), "code/model_def.py": b"print(1)\n"},
            metric,
        )
        for trial, steps, metric in rows
    ]
    return experiment, checkpoints


class RecordingProxy:
    """An HTTP proxy in front of the live server that records request headers and can cut
    the first ``cut`` download responses off after ``cut_after`` body bytes."""

    def __init__(self, upstream: str, cut: int = 0, cut_after: int = 0):
        self.upstream = urlsplit(upstream)
        self.cut = cut
        self.cut_after = cut_after
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.forward(self, "GET")

            def do_PUT(self):
                proxy.forward(self, "PUT")

            def do_PATCH(self):
                proxy.forward(self, "PATCH")

            def do_POST(self):
                proxy.forward(self, "POST")

            def do_DELETE(self):
                proxy.forward(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, handler, method):
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        with self.lock:
            self.requests.append((handler.path, headers))
            cut = "/download" in handler.path and self.cut > 0
            if cut:
                self.cut -= 1
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
        connection.request(method, handler.path, body=body, headers=headers)
        response = connection.getresponse()
        handler.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "server", "date"):
                handler.send_header(key, value)
        data = response.read()
        if "Content-Length" not in response.headers:
            handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data[: self.cut_after] if cut else data)
        handler.wfile.flush()
        handler.close_connection = True
        connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def download_ranges(self) -> list[str | None]:
        return [h.get("Range") for path, h in self.requests if "/download" in path]
