"""Shared helpers of the Determined-client tests: ckptweb's own view of the same data."""

from __future__ import annotations

import csv
import io
import subprocess
import tarfile
from pathlib import Path

from tests.factories import client_for


def ckptweb_api(user):
    """ckptweb's own REST API as ``user`` (in-process, same database as the live server)."""
    return client_for(user, api=True)


def csv_rows(stdout: str) -> list[dict]:
    """The rows of ``det ... --csv`` output."""
    return list(csv.DictReader(io.StringIO(stdout.strip())))


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory``: relative path -> bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def ckptweb_download(user, checkpoint, target: Path) -> dict[str, bytes]:
    """ckptweb's own download (``GET /api/v1/checkpoints/{uuid}/download``), extracted."""
    response = ckptweb_api(user).get(f"/api/v1/checkpoints/{checkpoint.uuid}/download?format=tar")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
    return tree(target)


def assert_clean_error(result, *words: str) -> None:
    """The client failed with a message (no traceback) containing every word."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr + result.stdout, (word, result.stderr, result.stdout)


def run_detached(argv, env, cwd, timeout, input=None) -> subprocess.CompletedProcess:
    """Run ``argv`` with text output captured and no controlling terminal (so getpass
    reads stdin)."""
    return subprocess.run(
        argv,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        start_new_session=True,
    )
