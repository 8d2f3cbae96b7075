"""Fixtures of the GC tests (the locations, eager task execution and the real Celery workers
are tests/experiments/conftest.py's, shared with the registry's GC tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.servers import missing_service


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
