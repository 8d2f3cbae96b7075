"""``ckpt checkpoint download`` against a hostile server: no tar member leaves its folder.

A small stdlib HTTP server plays a compromised (or impersonated) ckptweb: it answers the
checkpoint lookup, then serves a tar whose members try ``../``, absolute paths, a
``<uuid>/../`` prefix, a symlink and a hard link. The real ``ckpt`` executable must refuse
each one, write nothing outside ``-o DIR`` and leave no partial checkpoint behind.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
import uuid as uuid_lib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.client.cli.helpers import CKPT

UUID = str(uuid_lib.uuid4())


def hostile_tar(name: str, kind: str = "file") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        good = tarfile.TarInfo("metadata.json")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"{}"))
        member = tarfile.TarInfo(name)
        if kind == "symlink":
            member.type, member.linkname = tarfile.SYMTYPE, "../../escaped"
            tar.addfile(member)
        elif kind == "hardlink":
            member.type, member.linkname = tarfile.LNKTYPE, "/etc/passwd"
            tar.addfile(member)
        else:
            member.size = 5
            tar.addfile(member, io.BytesIO(b"evil\n"))
    return buffer.getvalue()


class HostileServer:
    """Answers ``GET checkpoints/<uuid>`` and its download with a crafted tar."""

    def __init__(self, archive: bytes):
        checkpoint = {"uuid": UUID, "state": "COMPLETED", "resources": {"metadata.json": 2}}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.endswith("/download"):
                    body, kind = archive, "application/x-tar"
                elif self.path.rstrip("/").endswith(UUID):
                    body, kind = json.dumps(checkpoint).encode(), "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("../escaped", "file"),
        ("code/../../escaped", "file"),
        (f"{UUID}/../../escaped", "file"),
        ("{tmp}/escaped-absolute", "file"),  # an absolute path under this test's tmp_path
        ("link", "symlink"),
        ("hard", "hardlink"),
    ],
)
def test_a_member_escaping_its_folder_is_refused(tmp_path, name, kind):
    if not CKPT.exists():
        pytest.fail(f"{CKPT} is missing: run `.venv/bin/pip install -e . --no-deps`")
    name = name.format(tmp=tmp_path)
    server = HostileServer(hostile_tar(name, kind))
    work = tmp_path / "work"
    out = work / "out"
    out.mkdir(parents=True)
    try:
        result = subprocess.run(
            [str(CKPT), "checkpoint", "download", UUID, "-o", str(out)],
            env={**os.environ, "CKPTWEB_URL": server.url, "CKPTWEB_TOKEN": "x" * 40},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=work,
        )
    finally:
        server.close()
    assert result.returncode != 0, result.stdout
    assert "unsafe path" in result.stderr or "not a regular file" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("escaped*")), "a member was written outside its folder"
    assert sorted(p.name for p in out.iterdir()) == []  # no partial checkpoint, no .part


def run_download(tmp_path, archive: bytes) -> tuple[subprocess.CompletedProcess, object]:
    server = HostileServer(archive)
    out = tmp_path / "out"
    out.mkdir()
    try:
        result = subprocess.run(
            [str(CKPT), "checkpoint", "download", UUID, "-o", str(out)],
            env={**os.environ, "CKPTWEB_URL": server.url, "CKPTWEB_TOKEN": "x" * 40},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.close()
    return result, out


def test_a_member_larger_than_its_resource_is_refused_before_it_is_written(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("metadata.json")  # the checkpoint records 2 bytes
        member.size = 3 * 1024 * 1024
        tar.addfile(member, io.BytesIO(b"x" * member.size))
    result, out = run_download(tmp_path, buffer.getvalue())
    assert result.returncode == 1
    assert "metadata.json is 3145728 bytes, but the checkpoint records 2" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_file_cannot_become_a_directory(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("metadata.json", b"{}"), ("metadata.json/inner", b"evil\n")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    result, out = run_download(tmp_path, buffer.getvalue())
    assert result.returncode == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == []
