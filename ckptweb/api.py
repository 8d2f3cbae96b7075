"""Project-wide API plumbing: error format shared by every endpoint."""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler as drf_exception_handler


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


def exception_handler(exc, context):
    """DRF's handler, plus a top-level ``message`` that names the offending field.

    Field errors keep DRF's shape (``{"field": ["..."]}``) so clients can map them, and
    every error body gains ``"message"`` for people and for the CLI.
    """
    response = drf_exception_handler(exc, context)
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
