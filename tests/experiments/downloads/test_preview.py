"""A checkpoint's file list and text preview (what the checkpoint page shows), on every
backend."""

from __future__ import annotations

import pytest

from experiments import downloads

pytestmark = pytest.mark.usefixtures("secret_watch")


def test_checkpoint_files_and_text_preview(store, make_checkpoint):
    checkpoint = make_checkpoint(
        store,
        {
            "config.yaml": b"lr: 0.1\n",
            "code/model.py": "print('<b>é</b>')\n".encode(),
            "weights.bin": b"\x00\x01" * 10,
            "notes.json": b"\xff\xfe not utf-8",
            "big.txt": b"x" * 2048,
        },
    )
    files = downloads.checkpoint_files(checkpoint)
    assert [(f.path, f.size) for f in files] == [
        ("big.txt", 2048),
        ("code/model.py", 19),
        ("config.yaml", 8),
        ("notes.json", 12),
        ("weights.bin", 20),
    ]
    assert downloads.read_text_preview(checkpoint, "config.yaml") == "lr: 0.1\n"
    assert downloads.read_text_preview(checkpoint, "code/model.py") == "print('<b>é</b>')\n"
    assert downloads.read_text_preview(checkpoint, "weights.bin") is None
    assert downloads.read_text_preview(checkpoint, "notes.json") is None
    assert downloads.read_text_preview(checkpoint, "big.txt", limit=1024) is None
    assert downloads.read_text_preview(checkpoint, "big.txt") == "x" * 2048
    assert downloads.read_text_preview(checkpoint, "../etc/passwd.txt") is None
    assert downloads.read_text_preview(checkpoint, "missing.txt") is None
