"""Project-wide API plumbing: the JSON parser within limits, and one error format."""

import re

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler as drf_exception_handler

from ckptweb.lib.errors import Conflict, Gone
from ckptweb.lib.limits import MAX_BODY_BYTES, InvalidInput, check_json, decode_json
from ckptweb.lib.paths import UnsafePath
from ckptweb.lib.units import human_bytes
from storage.backends.base import (
    DirectDownloadUnsupported,
    FileNotFoundInStorage,
    StorageError,
    TransientStorageError,
)


class ConflictError(APIException):
    """A ``ckptweb.lib.errors.Conflict`` as a 409 ``{"detail": message}``."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = Conflict.default_message
    default_code = "conflict"


class StatusError(APIException):
    """An error of ``STATUSES`` answered with its status: ``{"detail": message}``."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code


#: Exception -> HTTP status of every API answer (``/det-compat/`` answers the same status in
#: Determined's body); the first match wins (subclasses first). ``api_exception`` answers
#: these, and InvalidInput (400 naming the field), Conflict (409), a body too large (413), a
#: 404 and an unsafe path (400 naming ``path``) with their own classes.
STATUSES = (
    (Gone, 410),  # a checkpoint's files are deleted or being deleted
    (FileNotFoundInStorage, 404),
    (DirectDownloadUnsupported, 409),  # the storage has no direct URLs (shared_fs)
    (TransientStorageError, 503),  # worth retrying (the downloads add Retry-After)
    (StorageError, 502),  # the storage answered with an error
)


class BodyTooLarge(APIException):
    """A request body over ``MAX_BODY_BYTES``: a JSON 413, not Django's HTML 400."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"request body is over the limit of {human_bytes(MAX_BODY_BYTES, exact=True)}."
    default_code = "too_large"


def invalid(exc: InvalidInput) -> ValidationError:
    """An ``InvalidInput`` as DRF's 400 ``{field: [message]}`` (field: its top-level name)."""
    top = exc.field.split(".", 1)[0].split("[", 1)[0] or "body"
    return ValidationError({top: [exc.message]})


class LimitedJSONParser(JSONParser):
    """JSON bodies decoded by ``ckptweb.lib.limits``: one body at most 16 MiB, every field
    within the JSON limits (depth, Unicode, finite numbers), refused with a 400 naming the
    field before any view or serializer sees it. Per-field sizes (1 MiB of metadata,
    100,000 resources) are the services' rule, so imports meet them too.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        try:
            data = decode_json(raw, "body")
            if isinstance(data, dict):
                check_json(list(data), "body", max_bytes=None)  # the keys
                for key, value in data.items():
                    check_json(value, key, max_bytes=None)  # sizes: the services' rule
            else:
                check_json(data, "body", max_bytes=None)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return data


class FastJSONRenderer(JSONRenderer):
    """JSON through orjson, for large plain responses (gc-preview of 100k checkpoints).

    Only for data made of dicts, lists, str, int, float, bool and None; about ten times
    faster than the standard encoder there.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data)


def _first_message(detail) -> str:
    """Flatten DRF error detail into one human-readable sentence naming the field."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            if field in ("non_field_errors", "detail"):
                return message
            return f"{field}: {message}"
        return ""
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


STOCK_NOT_FOUND = re.compile(r"No (\w+) matches the given query\.")


def not_found(exc: Http404, context) -> NotFound:
    """``Experiment 99 does not exist.`` instead of Django's stock 404 sentence."""
    match = STOCK_NOT_FOUND.fullmatch(str(exc))
    if not match:
        return NotFound(str(exc) or None)
    kwargs = (context or {}).get("kwargs") or {}
    model = re.sub(r"(?<!^)(?=[A-Z])", " ", match.group(1))
    name = model.lower().split()[-1]
    value = kwargs.get(f"{name}_id") or kwargs.get("pk") or kwargs.get("uuid")
    if value is None and len(kwargs) == 1:
        value = next(iter(kwargs.values()))
    what = f"{model} {str(value)[:80]}" if value is not None else model
    return NotFound(f"{what} does not exist.")


def api_exception(exc: Exception, context=None) -> Exception:
    """The DRF exception answering ``exc`` (``STATUSES`` and the rules above it), or ``exc``."""
    if isinstance(exc, InvalidInput):
        return invalid(exc)
    if isinstance(exc, Conflict):
        return ConflictError(exc.message, exc.code)
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge()
    if isinstance(exc, Http404):
        return not_found(exc, context)
    if isinstance(exc, UnsafePath):
        return ParseError(f"path: {exc}")
    for kind, status_code in STATUSES:
        if isinstance(exc, kind):
            return StatusError(status_code, str(exc))
    return exc


def exception_handler(exc, context):
    """DRF's handler, plus a top-level ``message`` that names the offending field.

    Field errors keep DRF's shape (``{"field": ["..."]}``) so clients can map them, and
    every error body gains ``"message"`` for people and for the CLI.
    """
    response = drf_exception_handler(api_exception(exc, context), context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict):
        if "message" not in data:
            data = {**data, "message": _first_message(data)}
    else:
        data = {"errors": data, "message": _first_message(data)}
    response.data = data
    return response
