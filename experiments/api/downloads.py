"""Checkpoint downloads over the API: the whole checkpoint as tar/tgz/zip, one file, or direct URLs.

The archive and the single file answer Range requests where the length is known up front
(plain tar, single files), so interrupted downloads resume. ``GET checkpoints/{uuid}/urls``
validates ``expires`` and answers a manifest of presigned URLs (bearer credentials for a
while, so ``Cache-Control: no-store``); the single-file redirect (``files/{path}?redirect=1``)
lives in ``CheckpointFileView``.

Storage-layer exceptions become HTTP statuses in ``ckptweb.api.STATUSES`` (the one table of
every API answer, the Determined compatibility layer's included); these views answer errors
as JSON ``{"message": ...}`` without secrets, whatever the Accept header asked for. The rules (who
may download, gone checkpoints) are in ``experiments.downloads``.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from collections.abc import Iterator

from django.http import (
    FileResponse,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.utils.http import http_date, parse_http_date_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ckptweb.lib.paths import check_relative_path
from experiments import downloads
from experiments.models import Checkpoint
from storage import direct, untrusted
from storage.archive import FORMATS
from storage.backends.base import (
    CHUNK_SIZE,
    StorageError,
    TransientStorageError,
)

logger = logging.getLogger(__name__)


class RangeNotSatisfiable(exceptions.APIException):
    """416: the requested range starts past the end of the content."""

    status_code = 416
    default_detail = "The requested range is not satisfiable."

    def __init__(self, size: int):
        super().__init__(f"The requested range starts beyond the end ({size} bytes).")
        self.size = size


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
        response = super().handle_exception(exc)  # statuses: ckptweb.api.STATUSES
        if isinstance(exc, RangeNotSatisfiable):
            response["Content-Range"] = f"bytes */{exc.size}"
        if isinstance(exc, TransientStorageError):
            response["Retry-After"] = "30"
        return response

    def get_checkpoint(self, uuid) -> Checkpoint:
        """The checkpoint with its experiment and storage, or 404."""
        return get_object_or_404(
            Checkpoint.objects.select_related("experiment__storage"), uuid=uuid
        )


class ExpiresSerializer(serializers.Serializer):
    """``?expires=``: seconds the URLs stay valid, 1 to 604800 (7 days), default 3600."""

    expires = serializers.IntegerField(
        required=False,
        default=direct.DEFAULT_EXPIRES,
        min_value=1,
        max_value=direct.MAX_EXPIRES,
        error_messages={
            "invalid": "must be a whole number of seconds.",
            "min_value": "must be at least 1 second.",
            "max_value": f"must be at most {direct.MAX_EXPIRES} seconds (7 days).",
            "max_string_length": "is too long.",
        },
    )


def expires_seconds(request) -> int:
    """The validated ``expires`` query parameter (a 400 naming it when bad)."""
    data = ExpiresSerializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return data.validated_data["expires"]


class DirectFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class DirectManifestSerializer(serializers.Serializer):
    files = DirectFileSerializer(many=True)


class CheckpointURLsView(CheckpointStreamView):
    """``GET checkpoints/{uuid}/urls``: presigned GET URLs of every file (object stores)."""

    @extend_schema(
        operation_id="checkpoint_urls",
        parameters=[OpenApiParameter("expires", int, required=False)],
        responses={
            200: DirectManifestSerializer,
            400: OpenApiResponse(description="expires is not 1..604800."),
            404: OpenApiResponse(description="No such checkpoint, or it has no files."),
            502: OpenApiResponse(description="The storage failed."),
            503: OpenApiResponse(description="The storage is temporarily unavailable."),
            409: OpenApiResponse(description="The storage has no direct URLs (shared_fs)."),
            410: OpenApiResponse(description="The checkpoint is deleted or being deleted."),
        },
    )
    def get(self, request, uuid):
        expires_in = expires_seconds(request)
        checkpoint = self.get_checkpoint(uuid)
        files = downloads.checkpoint_urls(checkpoint, expires_in)
        body = DirectManifestSerializer({"files": files}).data
        response = Response(body)
        response["Cache-Control"] = "no-store"
        return response


# Types the standard table lacks but checkpoints often contain.
mimetypes.add_type("application/yaml", ".yaml")
mimetypes.add_type("application/yaml", ".yml")

#: Accept media types -> archive format.
ACCEPT_FORMATS = {
    "application/x-tar": "tar",
    "application/tar": "tar",
    "application/gzip": "tgz",
    "application/x-gzip": "tgz",
    "application/x-tgz": "tgz",
    "application/x-compressed-tar": "tgz",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
}
WILDCARDS = ("*/*", "application/*")


# --- negotiation and ranges ----------------------------------------------------------------


def _accepted_types(accept: str) -> list[str]:
    """Media types of an Accept header, best first (q=0 dropped, ties keep their order)."""
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranked.append((-quality, position, media.lower()))
    return [media for _q, _pos, media in sorted(ranked)]


def choose_format(query_format: str | None, accept: str | None) -> str:
    """The archive format from ``?format=`` or Accept; NotAcceptable (406) otherwise."""
    if query_format is not None:
        if query_format in FORMATS:
            return query_format
        raise exceptions.NotAcceptable(
            f"format: must be one of tar, tgz, zip, not {query_format[:40]!r}."
        )
    if not accept:
        return "tar"
    for media in _accepted_types(accept):
        if media in ACCEPT_FORMATS:
            return ACCEPT_FORMATS[media]
        if media in WILDCARDS:
            return "tar"
    raise exceptions.NotAcceptable(
        "Accept: checkpoints download as application/x-tar, application/gzip or application/zip."
    )


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``bytes=`` range; None to serve everything instead.

    Multiple ranges, other units and malformed values are ignored (RFC 9110 allows it);
    a range starting past the end raises RangeNotSatisfiable.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0 or size == 0:  # no byte of an empty file satisfies a suffix
                raise RangeNotSatisfiable(size)
            return max(size - suffix, 0), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start < 0 or (last and end <= start):
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size)


def requested_range(request, size: int, etag: str | None, modified: float | None):
    """The range to serve, honouring If-Range; None for the whole content."""
    header = request.headers.get("Range")
    if not header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range and not _validator_matches(if_range.strip(), etag, modified):
        return None
    return parse_byte_range(header, size)


def _validator_matches(value: str, etag: str | None, modified: float | None) -> bool:
    """True when an If-Range value is the current strong ETag or Last-Modified date."""
    if value.startswith(('"', "W/")):
        return etag is not None and value == etag
    date = parse_http_date_safe(value)
    return date is not None and modified is not None and int(modified) == date


# --- views ---------------------------------------------------------------------------------


ARCHIVE_RESPONSES = {
    (200, "application/x-tar"): OpenApiTypes.BINARY,
    (206, "application/x-tar"): OpenApiTypes.BINARY,
    (200, "application/gzip"): OpenApiTypes.BINARY,
    (200, "application/zip"): OpenApiTypes.BINARY,
    406: OpenApiResponse(description="Unsupported format or Accept header."),
    410: OpenApiResponse(description="The checkpoint is deleted or being deleted."),
}


class CheckpointDownloadView(CheckpointStreamView):
    """``GET checkpoints/{uuid}/download``: the checkpoint as a streamed archive."""

    @extend_schema(
        operation_id="checkpoint_download",
        parameters=[
            OpenApiParameter("format", str, enum=list(FORMATS), required=False),
            OpenApiParameter(
                "folder",
                bool,
                required=False,
                description="1: files under one folder <experiment>-trial<T>-step<S>-<uuid8>/ "
                "(the default layout is relative to the checkpoint root).",
            ),
        ],
        responses=ARCHIVE_RESPONSES,
    )
    def get(self, request, uuid):
        return self.archive_response(request, self.get_checkpoint(uuid))

    def archive_response(self, request, checkpoint, filename: str | None = None):
        """The checkpoint as tar (with Range), tgz or zip; ``filename`` without extension.

        Shared by every route that downloads a checkpoint (by uuid, by model version).
        """
        fmt = choose_format(request.query_params.get("format"), request.headers.get("Accept"))
        downloads.ensure_downloadable(checkpoint)
        filename = filename or str(checkpoint.uuid)
        if request.query_params.get("folder") in ("1", "true"):
            filename = downloads.checkpoint_folder(checkpoint)
            archive = downloads.foldered_archive([checkpoint])
        else:
            archive = downloads.checkpoint_archive(checkpoint)
        if fmt == "tar":
            response = self.tar_response(request, archive)
        else:
            response = StreamingHttpResponse(
                logged(archive.stream(fmt), str(checkpoint.uuid)),
                content_type=FORMATS[fmt].media_type,
            )
            response["Accept-Ranges"] = "none"
        untrusted.harden(response, f"{filename}{FORMATS[fmt].extension}")
        return response

    @staticmethod
    def tar_response(request, archive) -> StreamingHttpResponse:
        """The plain tar, whole or one byte range, with its exact length."""
        plan = archive.tar_plan
        byte_range = requested_range(request, plan.size, plan.etag, None)
        start, end = byte_range or (0, plan.size)
        response = StreamingHttpResponse(
            logged(archive.stream_tar_range(start, end), str(archive.checkpoint.uuid)),
            content_type=FORMATS["tar"].media_type,
            status=206 if byte_range else 200,
        )
        response["Content-Length"] = str(end - start)
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = plan.etag
        if byte_range:
            response["Content-Range"] = f"bytes {start}-{end - 1}/{plan.size}"
        return response


class CheckpointFileResponse(FileResponse):
    """FileResponse reading 1 MiB at a time (sendfile still applies to real files)."""

    block_size = CHUNK_SIZE


class CheckpointFileView(CheckpointStreamView):
    """``GET checkpoints/{uuid}/files/{path}``: one file, with Range and validators.

    The bytes are untrusted: :func:`storage.untrusted.harden` sets nosniff, a sandbox CSP
    and ``attachment`` for everything but plain text and raster images.
    """

    @extend_schema(
        operation_id="checkpoint_file",
        parameters=[
            OpenApiParameter("download", bool, required=False),
            OpenApiParameter("redirect", bool, required=False),
            OpenApiParameter("expires", int, required=False),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="redirect=1: to a presigned URL of the file."),
            409: OpenApiResponse(description="redirect=1 on a storage without direct URLs."),
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="The path leaves the checkpoint directory."),
            404: OpenApiResponse(description="No such file."),
            410: OpenApiResponse(description="The checkpoint is deleted or being deleted."),
        },
    )
    def get(self, request, uuid, path):
        checkpoint = self.get_checkpoint(uuid)
        downloads.ensure_downloadable(checkpoint)
        relative = check_relative_path(path)
        if request.query_params.get("redirect") in ("1", "true"):
            return self.redirect(request, checkpoint, relative)
        stored = downloads.stat_checkpoint_file(checkpoint, relative)
        if_none_match = request.headers.get("If-None-Match", "")
        if stored.etag and stored.etag in (tag.strip() for tag in if_none_match.split(",")):
            response = HttpResponseNotModified()
            response["ETag"] = stored.etag
            return response
        accel = downloads.accel_redirect_uri(checkpoint, relative)
        if accel:
            return self.accel_redirect(request, accel, relative)
        byte_range = requested_range(request, stored.size, stored.etag, stored.modified)
        start, end = byte_range or (0, None)
        reader = downloads.open_checkpoint_file(checkpoint, relative, start, end)
        response = CheckpointFileResponse(
            reader, status=206 if byte_range else 200, filename=posixpath.basename(relative)
        )
        untrusted.harden(
            response,
            relative,
            as_attachment=request.query_params.get("download") in ("1", "true"),
        )
        self.set_file_headers(response, stored, byte_range)
        return response

    @staticmethod
    def accel_redirect(request, uri: str, relative: str) -> HttpResponse:
        """An empty answer naming the file for nginx (``CKPTWEB_ACCEL_REDIRECT_PREFIX``).

        nginx sends the bytes from its ``internal`` location and answers Range, If-Range
        and validators itself; the untrusted-content headers set here reach the client
        through the location's ``add_header ... $upstream_http_...`` lines (README).
        """
        guessed = mimetypes.guess_type(relative)[0]
        response = HttpResponse(content_type=guessed or "application/octet-stream")
        untrusted.harden(
            response,
            relative,
            as_attachment=request.query_params.get("download") in ("1", "true"),
        )
        response["X-Accel-Redirect"] = uri
        response["Cache-Control"] = "private"
        return response

    @staticmethod
    def redirect(request, checkpoint, relative: str) -> HttpResponseRedirect:
        """302 to a presigned URL of the file (``?expires=`` seconds, default 1 h)."""
        url = downloads.checkpoint_file_url(checkpoint, relative, expires_seconds(request))
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def set_file_headers(response, stored, byte_range) -> None:
        """Length, range, validators of one file response."""
        start, end = byte_range or (0, stored.size)
        response["Content-Length"] = str(end - start)
        response["Accept-Ranges"] = "bytes"
        if byte_range:
            response["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
        if stored.etag:
            response["ETag"] = stored.etag
        if stored.modified is not None:
            response["Last-Modified"] = http_date(stored.modified)
