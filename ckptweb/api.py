"""Project-wide API plumbing: error format shared by every endpoint."""

from rest_framework.views import exception_handler as drf_exception_handler


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
