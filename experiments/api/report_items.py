"""Checkpoint reports of a batch checked by one plain function over the parsed dicts.

``CheckpointReportSerializer`` describes a report for the OpenAPI schema and checks the
single report; a batch of 1,000 reports through it costs a DRF field tree per item.
``checkpoint_report`` applies the same rules with the same messages (DRF's own message
texts, taken from the field classes) in a few comparisons per field.

One check per JSON value: the API's parser (``ckptweb.api.LimitedJSONParser``) has walked
every value of the body with ``ckptweb.lib.limits.check_json`` before a view runs, so neither
this module nor the service walks ``metadata`` or ``resources`` again (NUL, Unicode,
numbers, depth); the service still applies the per-field rules (1 MiB, paths, sizes).
"""

from __future__ import annotations

import math
import uuid as uuid_lib

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from ckptweb.lib.limits import MAX_INT
from experiments.api.serializers import CheckpointReportSerializer

_INT = serializers.IntegerField.default_error_messages
_FIELD = serializers.Field.default_error_messages
_DICT = serializers.DictField.default_error_messages
_INVALID_UUID = serializers.UUIDField.default_error_messages["invalid"]
_NOT_A_DICT = serializers.Serializer.default_error_messages["invalid"]
_DECIMAL = serializers.IntegerField.re_decimal
_MAX_STRING = serializers.IntegerField.MAX_STRING_LENGTH
_FLOAT = serializers.FloatField.default_error_messages
_MISSING = object()


class _Refused(Exception):
    def __init__(self, detail):
        self.detail = detail


def _integer(value, max_value: int = MAX_INT) -> int:
    """DRF's ``IntegerField(min_value=0, max_value=max_value)`` on a present value."""
    if value is None:
        raise _Refused([_FIELD["null"]])
    if type(value) is not int:  # "5", 5.0 and "5.0" are integers to DRF; True is not
        if isinstance(value, str) and len(value) > _MAX_STRING:
            raise _Refused([_INT["max_string_length"]])
        try:
            value = int(_DECIMAL.sub("", str(value)))
        except (ValueError, TypeError):
            raise _Refused([_INT["invalid"]]) from None
    if value < 0:
        raise _Refused([_INT["min_value"].format(min_value=0)])
    if value > max_value:
        raise _Refused([_INT["max_value"].format(max_value=max_value)])
    return value


def _uuid(value):
    if value is None:
        raise _Refused([_FIELD["null"]])
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        if isinstance(value, int):
            return uuid_lib.UUID(int=value)
        if isinstance(value, str):
            return uuid_lib.UUID(hex=value)
    except ValueError:
        pass
    raise _Refused([_INVALID_UUID.format(value=value)])


def _dict(value) -> dict:
    if value is None:
        raise _Refused([_FIELD["null"]])
    if not isinstance(value, dict):
        raise _Refused([_DICT["not_a_dict"].format(input_type=type(value).__name__)])
    return value


def _resources(value) -> dict:
    """As sent (no "5" → 5 coercion; the service checks sizes strictly), after DRF's
    child ``IntegerField`` and the serializer's sum rule on the coerced sizes."""
    total = 0
    errors = {}
    for path, size in _dict(value).items():
        try:
            total += _integer(size)
        except _Refused as exc:
            errors[str(path)] = exc.detail
    if errors:
        raise _Refused(errors)
    if total > MAX_INT:
        raise _Refused(["resources add up to more than 2**63-1 bytes."])
    return value


def _number(value) -> float:
    """DRF's ``FloatField`` on a present value (True is 1.0 to it)."""
    if value is None:
        raise _Refused([_FIELD["null"]])
    if isinstance(value, str) and len(value) > _MAX_STRING:
        raise _Refused([_FLOAT["max_string_length"]])
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Refused([_FLOAT["invalid"]]) from None
    except OverflowError:
        raise _Refused([_FLOAT["overflow"]]) from None
    if not math.isfinite(number):
        raise _Refused([_FLOAT["invalid"]])
    return number


def _metrics(value) -> dict:
    """As sent (ints stay ints; the service checks them), after DRF's child ``FloatField``."""
    errors = {}
    for name, number in _dict(value).items():
        try:
            _number(number)
        except _Refused as exc:
            errors[str(name)] = exc.detail
    if errors:
        raise _Refused(errors)
    return value


_FIELDS = (
    ("uuid", _uuid, False),
    ("steps_completed", _integer, True),
    ("resources", _resources, False),
    ("metadata", _dict, False),
)


_VALIDATION_FIELDS = (("steps_completed", _integer, True), ("metrics", _metrics, True))


def checkpoint_report(item) -> tuple[dict, dict]:
    """``(report, {})`` for a valid checkpoint report, else ``({}, {field: detail})``
    with DRF's details in its field order; unknown keys are dropped, as DRF does."""
    return _checked(item, _FIELDS)


def validation_report(item) -> tuple[dict, dict]:
    """As ``checkpoint_report``, for ``ValidationSerializer``'s ``{steps_completed, metrics}``."""
    return _checked(item, _VALIDATION_FIELDS)


def _checked(item, fields) -> tuple[dict, dict]:
    if item is None:  # DRF's detail is a bare list here, which names no field
        return {}, {"non_field_errors": [_FIELD["null"]]}
    if not isinstance(item, dict):
        return {}, {"non_field_errors": [_NOT_A_DICT.format(datatype=type(item).__name__)]}
    report: dict = {}
    errors: dict = {}
    for name, check, required in fields:
        value = item.get(name, _MISSING)
        if value is _MISSING:
            if required:
                errors[name] = [_FIELD["required"]]
            continue
        try:
            report[name] = check(value)
        except _Refused as exc:
            errors[name] = exc.detail
    return ({}, errors) if errors else (report, {})


def checked_report(request) -> dict:
    """The single report's body checked by ``checkpoint_report`` (a 400 naming the fields
    as the serializer's); a body that is not an object gets the serializer's own 400."""
    if not isinstance(request.data, dict):
        body = CheckpointReportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data
    report, errors = checkpoint_report(request.data)
    if errors:
        raise ValidationError(errors)
    return report
