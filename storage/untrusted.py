"""Response headers for bytes that come out of a checkpoint.

Checkpoint files are written by training code, which nobody vetted: an ``evil.html`` or an
``.svg`` with a ``<script>`` must never run in a user's (or an admin's) browser under the
ckptweb origin. Every response that serves checkpoint bytes therefore goes through
:func:`harden` — the one place that decides how they are served:

- ``X-Content-Type-Options: nosniff`` — the browser never guesses a more active type;
- ``Content-Security-Policy: sandbox; default-src 'none'`` — even a rendered document is an
  opaque origin that can run no script and load nothing;
- ``Content-Disposition: attachment`` unless the type is plain text or a raster image (and
  no ``?download=1`` was asked); active types (HTML, SVG, XML, JavaScript) are additionally
  relabelled ``application/octet-stream`` so nothing ever labels them ``text/html``.
"""

from __future__ import annotations

import posixpath

from django.utils.http import content_disposition_header

SANDBOX_CSP = "sandbox; default-src 'none'"

#: Types that may be shown in the browser tab (everything else downloads).
INLINE_TYPES = frozenset(
    {
        "text/plain",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/avif",
    }
)

#: Types a browser would execute or render as a document: never served under their name.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-shockwave-flash",
        "application/pdf",
    }
)


def media_type(content_type: str) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_inline(content_type: str) -> bool:
    """True for the types a browser may display: plain text and raster images."""
    return media_type(content_type) in INLINE_TYPES


def harden(response, filename: str = "", as_attachment: bool = True) -> None:
    """Set the untrusted-content headers on a response serving checkpoint bytes.

    ``filename`` names the download (``Content-Disposition``); ``as_attachment=False``
    asks for inline display, granted only for :data:`INLINE_TYPES`.
    """
    content_type = response.get("Content-Type", "application/octet-stream")
    if media_type(content_type) in ACTIVE_TYPES or media_type(content_type).endswith("+xml"):
        response["Content-Type"] = "application/octet-stream"
    inline = not as_attachment and is_inline(response["Content-Type"])
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX_CSP
    disposition = content_disposition_header(not inline, posixpath.basename(filename))
    if disposition:
        response["Content-Disposition"] = disposition
    elif not inline:
        response["Content-Disposition"] = "attachment"
