"""``experiments.api.report_items`` answers every report as its serializer does.

``report_items`` re-implements DRF's field checks of ``CheckpointReportSerializer`` and
``ValidationSerializer`` (for speed, from DRF's own message texts). This table pins it to
them: each row is one field and one input, and the same input must give both the same
refused fields in the same order with the same messages, or the same accepted value. The
table must reach every error each field of the serializers can give (derived from the
fields themselves, so a new field or bound without rows fails here).

The serializers also run ``ckptweb.lib.limits.check_json`` on metadata and metrics (NUL,
Unicode, depth, numbers); ``report_items`` leaves that to the API's parser, which checks
every value of a body before any view runs. Those rows are compared with the parser's answer.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
import rest_framework.views  # noqa: F401 - before ckptweb.api, which DRF's settings import back
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from ckptweb.api import LimitedJSONParser
from ckptweb.lib.limits import MAX_INT
from experiments.api import report_items
from experiments.api.report_items import checkpoint_report, validation_report
from experiments.api.serializers import CheckpointReportSerializer, ValidationSerializer

MISSING = object()
#: The child of a plain ``DictField()``: any value, unchecked.
UNCHECKED = type(serializers.DictField().child)
UUID = uuid.uuid4()
LONG = "9" * 1001

#: (check, serializer, a valid report the rows change one field of)
FORMS = {
    "checkpoint": (checkpoint_report, CheckpointReportSerializer, {"steps_completed": 1}),
    "validation": (
        validation_report,
        ValidationSerializer,
        {"steps_completed": 1, "metrics": {"loss": 0.5}},
    ),
}

STEPS = [
    (1, None),
    (0, None),
    (MAX_INT, None),
    ("5", None),
    (5.0, None),
    ("5.00 ", None),
    (5.5, "invalid"),
    (True, "invalid"),
    ("", "invalid"),
    ("x", "invalid"),
    ([1], "invalid"),
    ({"n": 1}, "invalid"),
    (1e20, "invalid"),
    (float("inf"), "invalid"),
    (LONG, "max_string_length"),
    (-1, "min_value"),
    (MAX_INT + 1, "max_value"),
    (None, "null"),
    (MISSING, "required"),
]

#: (form, field, value, the serializer's error code there: None when accepted,
#: "child:<code>" for a value inside a dict field)
ROWS = [
    *[("checkpoint", "steps_completed", value, code) for value, code in STEPS],
    *[("validation", "steps_completed", value, code) for value, code in STEPS],
    ("checkpoint", "uuid", str(UUID), None),
    ("checkpoint", "uuid", str(UUID).upper(), None),
    ("checkpoint", "uuid", f"urn:uuid:{UUID}", None),
    ("checkpoint", "uuid", UUID, None),
    ("checkpoint", "uuid", 12, None),
    ("checkpoint", "uuid", -12, "invalid"),
    ("checkpoint", "uuid", "x", "invalid"),
    ("checkpoint", "uuid", "", "invalid"),
    ("checkpoint", "uuid", 1.5, "invalid"),
    ("checkpoint", "uuid", [str(UUID)], "invalid"),
    ("checkpoint", "uuid", None, "null"),
    ("checkpoint", "uuid", MISSING, None),
    ("checkpoint", "resources", {"a": 1, "b/c": 0}, None),
    ("checkpoint", "resources", {}, None),
    ("checkpoint", "resources", {"a": "5"}, None),
    ("checkpoint", "resources", {"a": MAX_INT}, None),
    ("checkpoint", "resources", MISSING, None),
    ("checkpoint", "resources", [], "not_a_dict"),
    ("checkpoint", "resources", "x", "not_a_dict"),
    ("checkpoint", "resources", 1, "not_a_dict"),
    ("checkpoint", "resources", None, "null"),
    ("checkpoint", "resources", {"a": "x"}, "child:invalid"),
    ("checkpoint", "resources", {"a": True}, "child:invalid"),
    ("checkpoint", "resources", {"a": 1.5}, "child:invalid"),
    ("checkpoint", "resources", {"a": LONG}, "child:max_string_length"),
    ("checkpoint", "resources", {"a": -5}, "child:min_value"),
    ("checkpoint", "resources", {"a": MAX_INT + 1}, "child:max_value"),
    ("checkpoint", "resources", {"a": None}, "child:null"),
    ("checkpoint", "resources", {1: -1, "b": 2, "c": "x"}, "child:min_value"),
    ("checkpoint", "resources", {"a": MAX_INT, "b": 1}, "invalid"),  # validate_resources
    ("checkpoint", "metadata", {"x": [1, "y"], "n": None}, None),
    ("checkpoint", "metadata", {}, None),
    ("checkpoint", "metadata", MISSING, None),
    ("checkpoint", "metadata", "text", "not_a_dict"),
    ("checkpoint", "metadata", [], "not_a_dict"),
    ("checkpoint", "metadata", None, "null"),
    ("validation", "metrics", {"loss": 0.5, "acc": 1}, None),
    ("validation", "metrics", {}, None),
    ("validation", "metrics", {"loss": True}, None),
    ("validation", "metrics", {"loss": "0.5"}, None),
    ("validation", "metrics", {"loss": "x"}, "child:invalid"),
    ("validation", "metrics", {"loss": [1]}, "child:invalid"),
    ("validation", "metrics", {"loss": "1e999"}, "child:invalid"),
    ("validation", "metrics", {"loss": float("nan")}, "child:invalid"),
    ("validation", "metrics", {"loss": LONG}, "child:max_string_length"),
    ("validation", "metrics", {"loss": 10**400}, "child:overflow"),
    ("validation", "metrics", {"loss": None}, "child:null"),
    ("validation", "metrics", [], "not_a_dict"),
    ("validation", "metrics", "y", "not_a_dict"),
    ("validation", "metrics", None, "null"),
    ("validation", "metrics", MISSING, "required"),
]

#: Whole items that are not one field's: (form, item, the non-field error code or None).
ITEMS = [
    *[(form, None, "null") for form in FORMS],
    *[(form, [1, 2], "invalid") for form in FORMS],
    *[(form, "report", "invalid") for form in FORMS],
    ("checkpoint", {"steps_completed": 1, "unknown": 1}, None),  # unknown keys are dropped
    ("validation", {"steps_completed": 1, "metrics": {}, "id": 5, "trial_id": 3}, None),
    ("checkpoint", {"steps_completed": -1, "uuid": "x", "resources": 1, "metadata": 2}, "many"),
    ("validation", {"steps_completed": "x", "metrics": "y"}, "many"),
    ("validation", {}, "many"),
]

#: JSON values (as JSON text) the serializers refuse with ``check_json``, and the parser first.
JSON_ROWS = [
    ("checkpoint", "metadata", '{"k": "a\\u0000b"}'),
    ("checkpoint", "metadata", '{"a\\u0000": 1}'),
    ("checkpoint", "metadata", '{"k": "\\ud800"}'),
    ("checkpoint", "metadata", '{"n": 18446744073709551616}'),
    ("checkpoint", "metadata", '{"f": 1e400}'),
    ("checkpoint", "metadata", '{"deep": ' + "[" * 40 + "]" * 40 + "}"),
    ("validation", "metrics", '{"lo\\u0000ss": 1}'),
    ("validation", "metrics", '{"loss\\ud800": 1}'),
]


def with_field(form: str, field: str, value):
    item = dict(FORMS[form][2])
    item.pop(field, None)
    if value is not MISSING:
        item[field] = value
    return item


def text(detail):
    """An error detail as the JSON a client reads (ErrorDetails and lazy texts as strings)."""
    return json.loads(json.dumps(detail, default=str))


def codes(detail) -> list[str]:
    """The codes of the errors of one field: ``child:<code>`` for those of a dict's values."""
    if isinstance(detail, dict):
        return [f"child:{code}" for value in detail.values() for code in codes(value)]
    return [error.code for error in detail]


def answers(form: str, item) -> tuple[tuple, tuple, dict]:
    """(report_items' answer, the serializer's answer, the serializer's errors): an answer is
    ("accepted", value) or ("refused", [fields in order], errors). The serializer checks
    ``item`` as one of a list, as a batch through it would (a whole body that is no object
    gets the serializer itself: ``report_items.checked_report``)."""
    check, serializer_class, _ = FORMS[form]
    report, errors = check(item)
    mine = ("refused", list(errors), text(errors)) if errors else ("accepted", report)
    serializer = serializer_class(data=[item], many=True)
    if serializer.is_valid():
        theirs = ("accepted", dict(serializer.validated_data[0]))
        return mine, theirs, {}
    refused = serializer.errors[0]
    if isinstance(refused, list):  # a null item: DRF's detail is a bare list, which
        refused = {"non_field_errors": refused}  # report_items names non_field_errors
    return mine, ("refused", list(refused), text(refused)), refused


@pytest.mark.parametrize(
    ("form", "field", "value", "code"), ROWS, ids=[f"{r[0]}.{r[1]}={r[2]!r:.30}" for r in ROWS]
)
def test_each_field_is_answered_as_the_serializer_does(form, field, value, code):
    mine, theirs, refused = answers(form, with_field(form, field, value))
    assert mine == theirs
    if code is None:
        assert theirs[0] == "accepted"
    else:
        assert theirs[1] == [field]
        assert code in codes(refused[field])


@pytest.mark.parametrize(
    ("form", "item", "code"), ITEMS, ids=[f"{i[0]}:{i[1]!r:.40}" for i in ITEMS]
)
def test_whole_items_are_answered_as_the_serializer_does(form, item, code):
    mine, theirs, refused = answers(form, item)
    assert mine == theirs
    if code is None:
        assert theirs[0] == "accepted"
    elif code == "many":
        assert len(theirs[1]) > 1
    else:
        assert theirs[1] == ["non_field_errors"]
        assert codes(refused["non_field_errors"]) == [code]


def reachable(field: serializers.Field, child: bool = False) -> set[str]:
    """Every error code ``field`` can give to a JSON value, from its own settings."""
    found = {"null"} if not field.allow_null else set()
    if field.required and not child:
        found.add("required")
    if isinstance(field, serializers.DictField):
        found.add("not_a_dict")
        if not field.allow_empty:
            found.add("empty")
        if not isinstance(field.child, UNCHECKED):
            found |= {f"child:{code}" for code in reachable(field.child, child=True)}
    elif isinstance(field, serializers.IntegerField | serializers.FloatField):
        found |= {"invalid", "max_string_length"}
        if isinstance(field, serializers.FloatField):
            found.add("overflow")
        if field.min_value is not None:
            found.add("min_value")
        if field.max_value is not None:
            found.add("max_value")
    elif isinstance(field, serializers.UUIDField):
        found.add("invalid")
    else:
        raise AssertionError(f"no rows for a {type(field).__name__}: add them to ROWS")
    return found


@pytest.mark.parametrize("form", FORMS)
def test_the_rows_reach_every_field_and_error_of_the_serializers(form):
    serializer = FORMS[form][1]()
    fields = {name: f for name, f in serializer.fields.items() if not f.read_only}
    checked = report_items._FIELDS if form == "checkpoint" else report_items._VALIDATION_FIELDS
    assert {name: required for name, _, required in checked} == {
        name: field.required for name, field in fields.items()
    }
    for name, field in fields.items():
        covered = {code for f, n, _, code in ROWS if f == form and n == name}
        assert reachable(field) <= covered, name
        assert None in covered, f"no accepted value of {name}"
    assert {n for f, n, _, _ in ROWS if f == form} == set(fields)


def parsed(raw: str):
    """``raw`` JSON through the API's parser: the data, or its ValidationError's detail."""
    try:
        return LimitedJSONParser().parse(io.BytesIO(raw.encode()))
    except ValidationError as exc:
        return exc.detail


@pytest.mark.parametrize(("form", "field", "raw"), JSON_ROWS, ids=[r[2][:30] for r in JSON_ROWS])
def test_json_values_the_serializer_refuses_the_parser_refuses_alike(form, field, raw):
    value = json.loads(raw)
    _, theirs, _ = answers(form, with_field(form, field, value))
    assert theirs[0] == "refused"
    body = json.dumps(with_field(form, field, MISSING))[:-1] + f', "{field}": {raw}}}'
    assert text(parsed(body)) == {field: theirs[2][field]}
