"""The batch's plain item check gives the answers of ``CheckpointReportSerializer``."""

import uuid

import pytest

from ckptweb.lib.limits import MAX_INT
from experiments.api.report_items import checkpoint_report, validation_report
from experiments.api.serializers import CheckpointReportSerializer, ValidationSerializer

GOOD_UUID = str(uuid.uuid4())
ITEMS = [
    {"steps_completed": 1},
    {"steps_completed": 1, "resources": {"a": 1, "b/c": 0}, "metadata": {"x": [1, "y"]}},
    {"steps_completed": "5"},
    {"steps_completed": 5.0},
    {"steps_completed": "5.00 "},
    {"steps_completed": 5.5},
    {"steps_completed": True},
    {"steps_completed": None},
    {"steps_completed": -1},
    {"steps_completed": MAX_INT},
    {"steps_completed": MAX_INT + 1},
    {"steps_completed": "9" * 1001},
    {"steps_completed": [1]},
    {},
    {"steps_completed": 1, "uuid": GOOD_UUID},
    {"steps_completed": 1, "uuid": "x"},
    {"steps_completed": 1, "uuid": 12},
    {"steps_completed": 1, "uuid": -12},
    {"steps_completed": 1, "uuid": None},
    {"steps_completed": 1, "uuid": 1.5},
    {"steps_completed": 1, "resources": []},
    {"steps_completed": 1, "resources": None},
    {"steps_completed": 1, "resources": {"a": "5"}},
    {"steps_completed": 1, "resources": {"a": -5, "b": None, "c": "x"}},
    {"steps_completed": 1, "resources": {"a": MAX_INT, "b": 1}},
    {"steps_completed": 1, "metadata": "text"},
    {"steps_completed": 1, "metadata": None},
    {"steps_completed": 1, "unknown": 1},
    {"steps_completed": -1, "uuid": "x", "resources": 1, "metadata": 2},
    [1, 2],
    "report",
]


def plain(detail):
    if isinstance(detail, dict):
        return {str(key): plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [plain(value) for value in detail]
    return str(detail)


def assert_same_answer(check, serializer_class, item):
    """``check(item)`` accepts what the serializer accepts, as it does, or refuses alike."""
    serializer = serializer_class(data=item)
    report, errors = check(item)
    if serializer.is_valid():
        assert errors == {}
        assert report == dict(serializer.validated_data)
    else:
        assert report == {}
        assert plain(errors) == plain(serializer.errors)
        assert list(errors) == list(serializer.errors)  # the first field named is the same


@pytest.mark.parametrize("item", ITEMS, ids=[repr(i)[:40] for i in ITEMS])
def test_it_answers_as_the_serializer(item):
    assert_same_answer(checkpoint_report, CheckpointReportSerializer, item)


@pytest.mark.django_db
def test_bad_items_of_any_shape_are_a_400_by_index(alice_api, trial):
    items = [{"steps_completed": 1}, None, {"steps_completed": 2, "resources": {"a": "x"}}]
    response = alice_api.post(
        f"/api/v1/trials/{trial.pk}/checkpoints:batch", {"items": items}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["items"] == {
        "1": {"non_field_errors": ["This field may not be null."]},
        "2": {"resources": {"a": ["A valid integer is required."]}},
    }
    assert body["message"].startswith("items[1].non_field_errors: ")


@pytest.mark.django_db
def test_a_bad_file_size_alone_is_named_not_a_500(alice_api, trial):
    items = [{"steps_completed": 1}, {"steps_completed": 2, "resources": {"a": "x"}}]
    response = alice_api.post(
        f"/api/v1/trials/{trial.pk}/checkpoints:batch", {"items": items}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["message"] == "items[1].resources['a']: A valid integer is required."


VALIDATIONS = [
    {"steps_completed": 1, "metrics": {"loss": 0.5, "acc": 1}},
    {"steps_completed": 1, "metrics": {"loss": True}},
    {"steps_completed": 1, "metrics": {"loss": "0.5"}},
    {"steps_completed": 1, "metrics": {"loss": "x", "acc": None, "n": [1]}},
    {"steps_completed": 1, "metrics": {"loss": "1e999"}},
    {"steps_completed": 1, "metrics": {"loss": "9" * 1001}},
    {"steps_completed": 1, "metrics": {}},
    {"steps_completed": 1, "metrics": []},
    {"steps_completed": 1, "metrics": None},
    {"steps_completed": 1},
    {"metrics": {"loss": 1}},
    {"steps_completed": "x", "metrics": "y"},
    {"steps_completed": 1, "metrics": {"loss": 1}, "id": 5, "trial_id": 3},
    [1],
]


@pytest.mark.parametrize("item", VALIDATIONS, ids=[repr(i)[:40] for i in VALIDATIONS])
def test_validations_answer_as_the_serializer(item):
    assert_same_answer(validation_report, ValidationSerializer, item)
