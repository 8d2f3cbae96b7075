"""Checkpoint lists of experiments and trials; GET/PATCH/DELETE checkpoints/{uuid}."""

import json

import pytest

from experiments import services
from experiments.models import Checkpoint, GCRun
from tests.factories import add_checkpoints

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed(experiment, trial):
    """Checkpoints with and without metrics in two trials; returns {steps: checkpoint}."""
    other = services.create_trial(experiment)
    rows = add_checkpoints(trial, [(100, None), (200, 0.3), (300, 0.1), (400, None)])
    rows += add_checkpoints(other, [(150, 0.2), (250, None)])
    return {c.steps_completed: c for c in rows}


#: The API's checkpoint fields (docs/architecture.md "REST API"), written out so the
#: serializer cannot drift from them.
CHECKPOINT_FIELDS = (
    "id uuid trial_id experiment_id steps_completed state resources size_bytes metadata"
    " validation_metric protected report_time"
)


def steps_of(response):
    assert response.status_code == 200, response.content
    return [c["steps_completed"] for c in response.json()["results"]]


def test_it_lists_newest_first_with_all_fields(alice_api, experiment, mixed):
    response = alice_api.get(f"/api/v1/experiments/{experiment.pk}/checkpoints")
    assert steps_of(response) == [250, 150, 400, 300, 200, 100]
    first = response.json()["results"][0]
    assert set(first) >= set(CHECKPOINT_FIELDS.split())
    assert first["experiment_id"] == experiment.pk


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("validation_metric", [300, 150, 200, 250, 400, 100]),
        ("-validation_metric", [200, 150, 300, 250, 400, 100]),
        ("steps_completed", [100, 150, 200, 250, 300, 400]),
        ("-steps_completed", [400, 300, 250, 200, 150, 100]),
    ],
)
def test_metric_ordering_puts_nulls_last_both_ways(
    alice_api, experiment, mixed, ordering, expected
):
    url = f"/api/v1/experiments/{experiment.pk}/checkpoints?ordering={ordering}"
    assert steps_of(alice_api.get(url)) == expected


def test_it_filters_by_trial_and_state(alice_api, experiment, trial, mixed):
    base = f"/api/v1/experiments/{experiment.pk}/checkpoints"
    assert steps_of(alice_api.get(f"{base}?trial={trial.pk}")) == [400, 300, 200, 100]
    Checkpoint.objects.filter(pk=mixed[300].pk).update(state="DELETED")
    assert steps_of(alice_api.get(f"{base}?state=DELETED")) == [300]
    assert steps_of(alice_api.get(f"{base}?trial=999999")) == []
    assert alice_api.get(f"{base}?trial=99999999999999999999").status_code == 400
    assert alice_api.get(f"{base}?trial=x").status_code == 400
    assert alice_api.get(f"{base}?state=GONE").status_code == 400
    assert alice_api.get(f"{base}?ordering=uuid").status_code == 400


def test_trial_checkpoints(alice_api, trial, mixed):
    response = alice_api.get(f"/api/v1/trials/{trial.pk}/checkpoints?ordering=validation_metric")
    assert steps_of(response) == [300, 200, 400, 100]


@pytest.mark.parametrize("size", [4, 40])
def test_list_query_count_is_fixed(alice_api, experiment, trial, size, django_assert_num_queries):
    add_checkpoints(trial, [(step, 0.1 * step) for step in range(size)])
    # experiment, count, page, the page's model versions (one prefetch)
    with django_assert_num_queries(4):
        response = alice_api.get(f"/api/v1/experiments/{experiment.pk}/checkpoints")
    assert len(response.json()["results"]) == size
    with django_assert_num_queries(4):
        response = alice_api.get(f"/api/v1/trials/{trial.pk}/checkpoints")
    assert len(response.json()["results"]) == size


def test_it_shows_one_by_uuid(alice_api, checkpoint):
    body = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}").json()
    assert body["uuid"] == str(checkpoint.uuid)
    assert body["validation_metric"] == 0.5
    assert body["resources"] == {"state-dict.pth": 100}
    assert alice_api.get("/api/v1/checkpoints/not-a-uuid").status_code == 404
    assert (
        alice_api.get("/api/v1/checkpoints/00000000-0000-0000-0000-000000000000").status_code == 404
    )


def test_patch_replaces_metadata(alice_api, checkpoint):
    Checkpoint.objects.filter(pk=checkpoint.pk).update(metadata={"old": 1, "keep?": "no"})
    url = f"/api/v1/checkpoints/{checkpoint.uuid}"
    response = alice_api.patch(url, {"metadata": {"new": [1, 2]}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["metadata"] == {"new": [1, 2]}
    checkpoint.refresh_from_db()
    assert checkpoint.metadata == {"new": [1, 2]}
    assert checkpoint.protected is False


def test_patch_protects(alice_api, checkpoint):
    url = f"/api/v1/checkpoints/{checkpoint.uuid}"
    response = alice_api.patch(url, {"protected": True}, format="json")
    assert response.status_code == 200
    assert response.json()["protected"] is True
    checkpoint.refresh_from_db()
    assert checkpoint.protected is True
    assert checkpoint.metadata == {}


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": [1]},
        {"metadata": "text"},
        {"metadata": None},
        {"metadata": {"big": "x" * (1024 * 1024)}},
        {"protected": "maybe"},
    ],
)
def test_patch_rejects_bad_input(alice_api, checkpoint, body):
    url = f"/api/v1/checkpoints/{checkpoint.uuid}"
    response = alice_api.patch(url, body, format="json")
    assert response.status_code == 400
    field = next(iter(body))
    assert field in response.json()["message"]
    checkpoint.refresh_from_db()
    assert checkpoint.metadata == {}


def test_metadata_up_to_1_mib_is_stored_and_one_byte_more_is_a_400(alice_api, checkpoint):
    """The limit is 1 MiB of JSON as stored (compact): ``{"big":"..."}`` is 10 bytes of JSON
    around the string."""
    limit = 1024 * 1024
    url = f"/api/v1/checkpoints/{checkpoint.uuid}"
    over = {"big": "x" * (limit - 10 + 1)}
    response = alice_api.patch(url, {"metadata": over}, format="json")
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("metadata") and "1 MiB" in message
    checkpoint.refresh_from_db()
    assert checkpoint.metadata == {}

    at_limit = {"big": "x" * (limit - 10)}
    assert len(json.dumps(at_limit, separators=(",", ":"))) == limit
    response = alice_api.patch(url, {"metadata": at_limit}, format="json")
    assert response.status_code == 200
    assert response.json()["metadata"] == at_limit
    checkpoint.refresh_from_db()
    assert checkpoint.metadata == at_limit


def test_delete_starts_a_run(alice_api, checkpoint):
    response = alice_api.delete(f"/api/v1/checkpoints/{checkpoint.uuid}")
    assert response.status_code == 202
    run = response.json()["gc_run"]
    assert run["checkpoint_id"] == checkpoint.pk
    assert run["reason"] == "CHECKPOINT_DELETED"
    assert GCRun.objects.get().checkpoint_id == checkpoint.pk


def test_delete_of_protected_is_409(alice_api, checkpoint):
    Checkpoint.objects.filter(pk=checkpoint.pk).update(protected=True)
    response = alice_api.delete(f"/api/v1/checkpoints/{checkpoint.uuid}")
    assert response.status_code == 409
    assert "protected" in response.json()["message"]
    assert not GCRun.objects.exists()


def test_delete_of_deleted_is_409(alice_api, checkpoint):
    Checkpoint.objects.filter(pk=checkpoint.pk).update(state="DELETED")
    response = alice_api.delete(f"/api/v1/checkpoints/{checkpoint.uuid}")
    assert response.status_code == 409
    assert "DELETED" in response.json()["message"]
