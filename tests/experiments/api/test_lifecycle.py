"""PATCH experiments/{id} {name, description, labels, notes, archived} and GET experiments
?archived=&label=&owner=me (DESIGN.md "Experiment lifecycle and short ids")."""

import pytest

from experiments import services
from experiments.models import Experiment
from tests.factories import make_experiment

pytestmark = pytest.mark.django_db


def patch(api, experiment, body):
    return api.patch(f"/api/v1/experiments/{experiment.pk}", body, format="json")


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [e["id"] for e in response.json()["results"]]


def test_patch_sets_the_lifecycle_fields(alice_api, experiment):
    body = {
        "name": "renamed",
        "description": "why",
        "labels": ["prod", " resnet ", "prod"],
        "notes": "# notes\nline",
        "archived": True,
    }
    response = patch(alice_api, experiment, body)
    assert response.status_code == 200, response.json()
    shown = response.json()
    assert shown["labels"] == ["prod", "resnet"] and shown["archived"] is True
    assert shown["gc_run"] is None
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description, experiment.notes) == (
        "renamed",
        "why",
        "# notes\nline",
    )
    assert experiment.labels == ["prod", "resnet"] and experiment.archived
    again = alice_api.get(f"/api/v1/experiments/{experiment.pk}").json()
    assert again["labels"] == ["prod", "resnet"] and again["notes"] == "# notes\nline"


def test_patch_state_and_fields_together(alice_api, experiment):
    response = patch(alice_api, experiment, {"state": "COMPLETED", "labels": ["done"]})
    assert response.status_code == 200, response.json()
    assert response.json()["gc_run"] is not None
    experiment.refresh_from_db()
    assert experiment.state == "COMPLETED" and experiment.labels == ["done"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "state"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"labels": "prod"}, "labels"),
        ({"labels": [""]}, "labels"),
        ({"labels": ["x" * 256]}, "labels"),
        ({"labels": [f"l{i}" for i in range(101)]}, "labels"),
        ({"labels": ["a\x00b"]}, "labels"),
        ({"notes": "x" * 100_001}, "notes"),
        ({"archived": "maybe"}, "archived"),
    ],
)
def test_bad_values_are_400_naming_the_field(alice_api, experiment, body, field):
    response = patch(alice_api, experiment, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["message"]
    fresh = Experiment.objects.get(pk=experiment.pk)
    assert (fresh.name, fresh.labels, fresh.notes, fresh.archived) == ("exp", [], "", False)


def test_only_owner_or_staff_and_not_while_deleting(bob_api, staff_api, alice_api, experiment):
    assert patch(bob_api, experiment, {"labels": ["x"]}).status_code == 403
    assert patch(staff_api, experiment, {"labels": ["staff"]}).status_code == 200
    assert alice_api.delete(f"/api/v1/experiments/{experiment.pk}").status_code == 202
    assert patch(alice_api, experiment, {"notes": "late"}).status_code == 409
    experiment.refresh_from_db()
    assert experiment.labels == ["staff"] and experiment.notes == ""


def test_list_filters_archived_label_and_owner_me(alice_api, bob_api, alice, bob, experiment):
    storage = experiment.storage
    old = make_experiment(alice, storage, name="old")
    services.update_experiment(old, archived=True, labels=["prod"])
    tagged = make_experiment(bob, storage, name="tagged")
    services.update_experiment(tagged, labels=["prod", "cv"])
    odd = make_experiment(bob, storage, name="odd")
    services.update_experiment(odd, labels=['pr"od', "pro"])

    assert ids(alice_api.get("/api/v1/experiments")) == [odd.pk, tagged.pk, experiment.pk]
    assert ids(alice_api.get("/api/v1/experiments?archived=false")) == [
        odd.pk,
        tagged.pk,
        experiment.pk,
    ]
    assert ids(alice_api.get("/api/v1/experiments?archived=true")) == [old.pk]
    assert len(ids(alice_api.get("/api/v1/experiments?archived=all"))) == 4
    assert ids(alice_api.get("/api/v1/experiments?label=prod")) == [tagged.pk]
    assert ids(alice_api.get("/api/v1/experiments?label=prod&archived=all")) == [
        tagged.pk,
        old.pk,
    ]
    assert ids(alice_api.get('/api/v1/experiments?label=pr"od')) == [odd.pk]
    assert ids(alice_api.get("/api/v1/experiments?label=nothing")) == []
    assert ids(alice_api.get("/api/v1/experiments?owner=me")) == [experiment.pk]
    assert ids(bob_api.get("/api/v1/experiments?owner=me")) == [odd.pk, tagged.pk]
    assert ids(alice_api.get("/api/v1/experiments?owner=bob")) == [odd.pk, tagged.pk]
    bad = alice_api.get("/api/v1/experiments?archived=maybe")
    assert bad.status_code == 400 and "archived" in bad.json()["message"]


def test_an_archived_experiment_is_still_read_changed_and_deleted_by_id(alice_api, experiment):
    services.update_experiment(experiment, archived=True)
    url = f"/api/v1/experiments/{experiment.pk}"
    assert alice_api.get(url).json()["archived"] is True
    assert alice_api.get(f"{url}/gc-preview").status_code == 200
    assert patch(alice_api, experiment, {"archived": False}).status_code == 200
    experiment.refresh_from_db()
    assert not experiment.archived
    services.update_experiment(experiment, archived=True)
    assert alice_api.delete(url).status_code == 202
