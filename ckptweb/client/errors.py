"""The errors of the Python client (``ckptweb.client``) and how a response becomes one.

Every failed call raises ``ApiError`` whose message is the server's one-line ``message``;
``ckptweb.client`` and ``ckptweb.client.download`` both raise it, so it lives below both.
"""

from __future__ import annotations

import random
import re

import requests

#: Statuses a transfer retries: the server or storage is busy or restarting, not refusing.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """A request failed: ``status`` is the HTTP status (None for network errors)."""

    def __init__(self, message: str, status: int | None = None, body: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body or {}


class DownloadInterrupted(ApiError):
    """The archive stream broke off; what arrived is kept, to resume."""


def response_error(response: requests.Response) -> ApiError:
    """The ApiError of a failed response: the server's one-line ``message`` (or a short
    fallback), its status and JSON body."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    if not message:
        message = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if response.status_code == 401:
        message += " (set CKPTWEB_TOKEN or pass --token)"
    body = body if isinstance(body, dict) else {}
    return ApiError(" ".join(str(message).split()), response.status_code, body)


def network_reason(exc: requests.RequestException) -> str:
    """A short reason for a network failure: ``connection refused``, ``timed out``…"""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip().lower()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


def backoff(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...) of a transfer: the server's
    ``Retry-After`` (in seconds, at most 30) when given, else exponential with jitter."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), 30.0)
    return min(0.2 * 2**attempt, 5.0) * random.uniform(0.5, 1.0)
