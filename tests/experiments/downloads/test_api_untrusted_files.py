"""Checkpoint files are untrusted: every single-file response is sandboxed, on every backend.

Training code writes these files, so an ``evil.html`` or ``evil.svg`` must never be rendered
as a document of the ckptweb origin: nosniff, ``sandbox`` CSP and ``attachment`` for all but
plain text and raster images (``storage/untrusted.py``).
"""

from __future__ import annotations

import pytest

from tests.stores import consume

pytestmark = pytest.mark.usefixtures("secret_watch")

EVIL_HTML = b"<html><body><script>document.title='pwned';fetch('/api/v1/experiments')</script>"
EVIL_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
)

FILES = {
    "evil.html": EVIL_HTML,
    "report/evil.svg": EVIL_SVG,
    "page.xhtml": EVIL_HTML,
    "script.js": b"alert(1)",
    "notes.txt": b"plain <b>text</b>\n",
    "plot.png": b"\x89PNG\r\n\x1a\n" + bytes(32),
    "weights.bin": bytes(range(256)),
    "config.yaml": b"lr: 0.1\n",
    "no-extension": b"<script>alert(3)</script>",
}
CSP = "sandbox; default-src 'none'"


@pytest.fixture
def checkpoint(store, make_checkpoint):
    return make_checkpoint(store, FILES)


def url(checkpoint, path: str) -> str:
    return f"/api/v1/checkpoints/{checkpoint.uuid}/files/{path}"


def assert_sandboxed(response):
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP


@pytest.mark.parametrize(
    "path", ["evil.html", "report/evil.svg", "page.xhtml", "script.js", "no-extension"]
)
def test_active_content_is_an_attachment_never_html(store, checkpoint, alice_api, path):
    response = alice_api.get(url(checkpoint, path))
    assert response.status_code == 200
    assert_sandboxed(response)
    name = path.rsplit("/", 1)[-1]
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Type"] == "application/octet-stream"
    assert consume(response) == FILES[path]


@pytest.mark.parametrize(
    ("path", "media_type"), [("notes.txt", "text/plain"), ("plot.png", "image/png")]
)
def test_plain_text_and_raster_images_may_be_inline(store, checkpoint, alice_api, path, media_type):
    response = alice_api.get(url(checkpoint, path))
    assert_sandboxed(response)
    assert response["Content-Type"].startswith(media_type)
    assert response["Content-Disposition"] == f'inline; filename="{path}"'
    assert consume(response) == FILES[path]
    download = alice_api.get(url(checkpoint, path) + "?download=1")
    assert download["Content-Disposition"] == f'attachment; filename="{path}"'
    consume(download)


@pytest.mark.parametrize("path", ["weights.bin", "config.yaml"])
def test_other_types_download(store, checkpoint, alice_api, path):
    response = alice_api.get(url(checkpoint, path))
    assert_sandboxed(response)
    assert response["Content-Disposition"] == f'attachment; filename="{path}"'
    consume(response)


def test_ranges_and_head_carry_the_same_headers(store, checkpoint, alice_api):
    partial = alice_api.get(url(checkpoint, "evil.html"), HTTP_RANGE="bytes=0-5")
    assert partial.status_code == 206
    assert_sandboxed(partial)
    assert partial["Content-Disposition"].startswith("attachment")
    assert partial["Content-Type"] == "application/octet-stream"
    assert consume(partial) == EVIL_HTML[:6]
    head = alice_api.head(url(checkpoint, "report/evil.svg"))
    assert head.status_code == 200
    assert_sandboxed(head)
    assert head["Content-Disposition"].startswith("attachment")
    consume(head)


def test_archives_are_sandboxed_attachments(store, checkpoint, alice_api):
    for fmt in ("tar", "tgz", "zip"):
        response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download?format={fmt}")
        assert response.status_code == 200
        assert_sandboxed(response)
        assert response["Content-Disposition"].startswith("attachment; filename=")
        consume(response)
