"""Shared plumbing of the checkpoint download views: error statuses, JSON errors, logging.

Storage-layer exceptions become HTTP statuses in ``api_exception`` (one table); the
download views (``storage.api.views``, ``storage.api.direct_views``) and the Determined
compatibility layer all answer errors through it, as JSON ``{"message": ...}`` without
secrets, whatever the Accept header asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.shortcuts import get_object_or_404
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ckptweb.lib.paths import UnsafePath
from experiments.models import Checkpoint
from storage import services
from storage.backends.base import (
    DirectDownloadUnsupported,
    FileNotFoundInStorage,
    StorageError,
    TransientStorageError,
)

logger = logging.getLogger(__name__)


class StorageStatus(exceptions.APIException):
    """A storage-layer error answered with its HTTP status (see ``STATUSES``)."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code


#: Storage-layer exception -> HTTP status; the first match wins (subclasses first).
STATUSES = (
    (services.CheckpointGone, 410),  # its files are deleted or being deleted
    (FileNotFoundInStorage, 404),
    (DirectDownloadUnsupported, 409),  # the storage has no direct URLs (shared_fs)
    (TransientStorageError, 503),  # worth retrying: with Retry-After
    (StorageError, 502),  # the storage answered with an error
)


class RangeNotSatisfiable(exceptions.APIException):
    """416: the requested range starts past the end of the content."""

    status_code = 416
    default_detail = "The requested range is not satisfiable."

    def __init__(self, size: int):
        super().__init__(f"The requested range starts beyond the end ({size} bytes).")
        self.size = size


def api_exception(exc: Exception) -> Exception:
    """Map storage-layer exceptions to DRF exceptions (status + message)."""
    if isinstance(exc, UnsafePath):
        return exceptions.ParseError(f"path: {exc}")
    for kind, status_code in STATUSES:
        if isinstance(exc, kind):
            return StorageStatus(status_code, str(exc))
    return exc


class JSONErrorsNegotiation(BaseContentNegotiation):
    """Always render errors as JSON: the Accept header chooses the archive, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


def logged(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    """Pass chunks through; log (secret-free) why a stream broke off mid-way."""
    try:
        yield from chunks
    except StorageError as exc:
        logger.warning("Download of %s aborted: %s", what, exc)
        raise


class CheckpointStreamView(APIView):
    """Base of the download views: JSON errors, 401 for anonymous, storage error mapping."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsNegotiation

    def get_authenticate_header(self, request):
        """Answer 401 (not 403) to anonymous clients, inviting token authentication."""
        return "Token"

    def handle_exception(self, exc):
        exc = api_exception(exc)
        response = super().handle_exception(exc)
        if isinstance(exc, RangeNotSatisfiable):
            response["Content-Range"] = f"bytes */{exc.size}"
        if isinstance(exc, StorageStatus) and exc.status_code == 503:
            response["Retry-After"] = "30"
        return response

    def get_checkpoint(self, uuid) -> Checkpoint:
        """The checkpoint with its experiment and storage, or 404."""
        return get_object_or_404(
            Checkpoint.objects.select_related("experiment__storage"), uuid=uuid
        )
