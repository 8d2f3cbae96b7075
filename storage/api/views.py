"""Checkpoint downloads: the whole checkpoint as tar/tgz/zip, or one file, streamed.

Both answer Range requests where the length is known up front (plain tar, single files),
so interrupted downloads resume. Errors are JSON ``{"message": ...}`` without secrets
(``storage.api.base``).
"""

from __future__ import annotations

import mimetypes
import posixpath

from django.http import (
    FileResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.utils.http import http_date, parse_http_date_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions

from ckptweb.lib.paths import check_relative_path
from storage import bundles, direct, services, untrusted
from storage.api.base import CheckpointStreamView, RangeNotSatisfiable, logged
from storage.api.direct_views import expires_seconds
from storage.archive import FORMATS
from storage.backends.base import CHUNK_SIZE

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
        services.ensure_downloadable(checkpoint)
        filename = filename or str(checkpoint.uuid)
        if request.query_params.get("folder") in ("1", "true"):
            filename = bundles.checkpoint_folder(checkpoint)
            archive = bundles.foldered_archive([checkpoint])
        else:
            archive = services.checkpoint_archive(checkpoint)
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
        services.ensure_downloadable(checkpoint)
        relative = check_relative_path(path)
        if request.query_params.get("redirect") in ("1", "true"):
            return self.redirect(request, checkpoint, relative)
        stored = services.stat_checkpoint_file(checkpoint, relative)
        if_none_match = request.headers.get("If-None-Match", "")
        if stored.etag and stored.etag in (tag.strip() for tag in if_none_match.split(",")):
            response = HttpResponseNotModified()
            response["ETag"] = stored.etag
            return response
        byte_range = requested_range(request, stored.size, stored.etag, stored.modified)
        start, end = byte_range or (0, None)
        reader = services.open_checkpoint_file(checkpoint, relative, start, end)
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
    def redirect(request, checkpoint, relative: str) -> HttpResponseRedirect:
        """302 to a presigned URL of the file (``?expires=`` seconds, default 1 h)."""
        url = direct.checkpoint_file_url(checkpoint, relative, expires_seconds(request))
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
