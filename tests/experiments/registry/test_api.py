"""REST API of the model registry: models, versions, 409s, validation, permissions."""

import pytest
from rest_framework.test import APIClient

from experiments import registry
from experiments.choices import CheckpointState
from experiments.models import Checkpoint, Model, ModelVersion

pytestmark = pytest.mark.django_db


def test_it_creates_a_model(alice_api, alice):
    response = alice_api.post(
        "/api/v1/models",
        {"name": "resnet-prod", "description": "d", "labels": ["vision", "prod"]},
        format="json",
    )
    assert response.status_code == 201, response.data
    assert response.data["name"] == "resnet-prod"
    assert response.data["owner"] == "alice"
    assert response.data["labels"] == ["vision", "prod"]
    assert response.data["versions"] == []
    assert response.data["latest_version"] is None


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "name"),
        ("a" * 129, "at most 128"),
        ("has space", "letters, digits"),
        ("../etc", "letters, digits"),
        ("-dash-first", "letters, digits"),
        ("latest", "latest"),
        ("naïve", "letters, digits"),
    ],
)
def test_it_validates_the_name(alice_api, name, needle):
    response = alice_api.post("/api/v1/models", {"name": name}, format="json")
    assert response.status_code == 400, response.data
    assert "name" in response.data
    assert needle in response.data["message"]


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ("vision", "list"),
        (["has space"], "labels"),
        (["a,b"], "labels"),
        (["x" * 65], "64"),
        ([f"l{i}" for i in range(33)], "32"),
    ],
)
def test_it_validates_labels(alice_api, labels, needle):
    response = alice_api.post("/api/v1/models", {"name": "m", "labels": labels}, format="json")
    assert response.status_code == 400, response.data
    assert "labels" in response.data
    assert needle in response.data["message"]


def test_a_taken_name_is_a_409(alice_api, model):
    response = alice_api.post("/api/v1/models", {"name": "resnet-prod"}, format="json")
    assert response.status_code == 409
    assert "resnet-prod" in response.data["message"]


def test_it_lists_searches_and_filters_by_label(alice_api, alice, model, checkpoints):
    registry.create_model(alice, "bert-base", "language", ["nlp"])
    registry.register_version(model, checkpoints[1], alice)
    response = alice_api.get("/api/v1/models")
    assert response.status_code == 200
    assert [m["name"] for m in response.data["results"]] == ["bert-base", "resnet-prod"]
    assert response.data["count"] == 2
    resnet = response.data["results"][1]
    assert resnet["latest_version"]["version"] == 1
    assert resnet["latest_version"]["checkpoint"] == str(checkpoints[1].uuid)
    assert resnet["latest_version"]["validation_metric"] == 0.4
    names = lambda r: [m["name"] for m in r.data["results"]]  # noqa: E731
    assert names(alice_api.get("/api/v1/models?search=PRODUCTION")) == ["resnet-prod"]
    assert names(alice_api.get("/api/v1/models?search=nlp")) == ["bert-base"]
    assert names(alice_api.get("/api/v1/models?label=vision")) == ["resnet-prod"]
    assert names(alice_api.get("/api/v1/models?label=visio")) == []
    assert names(alice_api.get("/api/v1/models?label=a,b")) == []
    assert names(alice_api.get("/api/v1/models?ordering=-name")) == ["resnet-prod", "bert-base"]
    page = alice_api.get("/api/v1/models?page=2")
    assert page.status_code == 404


def test_the_list_costs_a_fixed_number_of_queries(
    alice_api, alice, checkpoints, django_assert_max_num_queries
):
    for index in range(12):
        model = registry.create_model(alice, f"m{index}")
        registry.register_version(model, checkpoints[index % 3], alice)
    with django_assert_max_num_queries(5):
        response = alice_api.get("/api/v1/models")
    assert len(response.data["results"]) == 12


def test_it_registers_versions_numbered_from_one(alice_api, model, checkpoints):
    url = "/api/v1/models/resnet-prod/versions"
    first = alice_api.post(url, {"checkpoint": str(checkpoints[0].uuid)}, format="json")
    assert first.status_code == 201, first.data
    second = alice_api.post(
        url, {"checkpoint": str(checkpoints[2].uuid), "comment": "best so far"}, format="json"
    )
    assert (first.data["version"], second.data["version"]) == (1, 2)
    assert second.data["registered_by"] == "alice"
    assert second.data["comment"] == "best so far"
    assert second.data["experiment_id"] == checkpoints[2].experiment_id
    assert second.data["size_bytes"] == checkpoints[2].size_bytes
    latest = alice_api.get("/api/v1/models/resnet-prod/versions/latest")
    assert latest.data["version"] == 2
    assert latest.data["checkpoint"] == str(checkpoints[2].uuid)
    one = alice_api.get("/api/v1/models/resnet-prod/versions/1")
    assert one.data["checkpoint"] == str(checkpoints[0].uuid)
    detail = alice_api.get("/api/v1/models/resnet-prod")
    assert [v["version"] for v in detail.data["versions"]] == [2, 1]
    listed = alice_api.get(url)
    assert [v["version"] for v in listed.data["results"]] == [2, 1]


def test_a_deleted_number_is_never_given_again(alice_api, alice, model, checkpoints):
    registry.register_version(model, checkpoints[0], alice)
    registry.register_version(model, checkpoints[1], alice)
    assert alice_api.delete("/api/v1/models/resnet-prod/versions/2").status_code == 204
    response = alice_api.post(
        "/api/v1/models/resnet-prod/versions", {"checkpoint": str(checkpoints[2].uuid)}
    )
    assert response.data["version"] == 3
    assert alice_api.get("/api/v1/models/resnet-prod/versions/2").status_code == 404


@pytest.mark.parametrize(
    "state", [CheckpointState.DELETED, CheckpointState.DELETING, CheckpointState.ERROR]
)
def test_only_completed_checkpoints_can_be_registered(alice_api, model, checkpoints, state):
    Checkpoint.objects.filter(pk=checkpoints[0].pk).update(state=state)
    response = alice_api.post(
        "/api/v1/models/resnet-prod/versions",
        {"checkpoint": str(checkpoints[0].uuid)},
        format="json",
    )
    assert response.status_code == 400
    assert "checkpoint" in response.data
    assert "COMPLETED" in response.data["message"]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "checkpoint"),
        ({"checkpoint": "not-a-uuid"}, "checkpoint"),
        ({"checkpoint": "00000000-0000-0000-0000-000000000000"}, "checkpoint"),
        ({"checkpoint": "PLACEHOLDER", "comment": "x" * 10_001}, "comment"),
        ({"checkpoint": "PLACEHOLDER", "comment": "a\x00b"}, "comment"),
    ],
)
def test_it_validates_registrations(alice_api, model, checkpoints, body, field):
    body = {k: str(checkpoints[0].uuid) if v == "PLACEHOLDER" else v for k, v in body.items()}
    response = alice_api.post("/api/v1/models/resnet-prod/versions", body, format="json")
    assert response.status_code == 400, response.data
    assert field in response.data
    assert field in response.data["message"]


@pytest.mark.parametrize("version", ["0", "-1", "x", "1.5", "99999999999", "²"])
def test_bad_version_numbers_are_404(alice_api, model, version):
    response = alice_api.get(f"/api/v1/models/resnet-prod/versions/{version}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_latest_of_an_empty_model_is_404(alice_api, model):
    assert alice_api.get("/api/v1/models/resnet-prod/versions/latest").status_code == 404
    assert alice_api.get("/api/v1/models/nope").status_code == 404


def test_it_updates_and_deletes_a_model(alice_api, alice, model, checkpoints):
    registry.register_version(model, checkpoints[0], alice)
    response = alice_api.patch(
        "/api/v1/models/resnet-prod", {"description": "new", "labels": ["a", "a", "b"]}
    )
    assert response.status_code == 200, response.data
    assert (response.data["description"], response.data["labels"]) == ("new", ["a", "b"])
    assert alice_api.get("/api/v1/models?label=b").data["count"] == 1
    assert alice_api.delete("/api/v1/models/resnet-prod").status_code == 204
    assert not Model.objects.exists()
    assert not ModelVersion.objects.exists()
    assert Checkpoint.objects.filter(pk=checkpoints[0].pk, state="COMPLETED").exists()


def test_deleting_latest_is_refused(alice_api, alice, model, checkpoints):
    registry.register_version(model, checkpoints[0], alice)
    response = alice_api.delete("/api/v1/models/resnet-prod/versions/latest")
    assert response.status_code == 400
    assert "version" in response.data


# --- 409s: a registered checkpoint and its experiment cannot be deleted --------------------


def test_deleting_a_registered_checkpoint_is_a_409_naming_the_versions(
    alice_api, alice, model, checkpoints
):
    registry.register_version(model, checkpoints[0], alice)
    other = registry.create_model(alice, "other")
    registry.register_version(other, checkpoints[0], alice)
    response = alice_api.delete(f"/api/v1/checkpoints/{checkpoints[0].uuid}")
    assert response.status_code == 409
    assert "other v1" in response.data["message"]
    assert "resnet-prod v1" in response.data["message"]
    assert Checkpoint.objects.get(pk=checkpoints[0].pk).state == "COMPLETED"
    # Once the versions are gone, it can be deleted.
    alice_api.delete("/api/v1/models/resnet-prod/versions/1")
    alice_api.delete("/api/v1/models/other")
    assert alice_api.delete(f"/api/v1/checkpoints/{checkpoints[0].uuid}").status_code == 202


def test_deleting_the_experiment_is_a_409_until_the_versions_go(
    alice_api, alice, model, checkpoints, experiment
):
    registry.register_version(model, checkpoints[1], alice)
    response = alice_api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert response.status_code == 409
    assert "resnet-prod v1" in response.data["message"]
    experiment.refresh_from_db()
    assert experiment.state != "DELETING"
    alice_api.delete("/api/v1/models/resnet-prod/versions/1")
    assert alice_api.delete(f"/api/v1/experiments/{experiment.pk}").status_code == 202


def test_a_checkpoint_of_a_deleting_experiment_cannot_be_registered(
    alice_api, model, checkpoints, experiment
):
    experiment.state = "DELETING"
    experiment.save()
    response = alice_api.post(
        "/api/v1/models/resnet-prod/versions", {"checkpoint": str(checkpoints[0].uuid)}
    )
    assert response.status_code == 400
    assert "being deleted" in response.data["message"]


# --- permissions ---------------------------------------------------------------------------


def test_anonymous_gets_401_everywhere(api, model):
    for method, url in [
        ("get", "/api/v1/models"),
        ("post", "/api/v1/models"),
        ("get", "/api/v1/models/resnet-prod"),
        ("get", "/api/v1/models/resnet-prod/versions"),
        ("get", "/api/v1/models/resnet-prod/versions/latest"),
        ("get", "/api/v1/models/resnet-prod/versions/latest/download"),
    ]:
        assert getattr(api, method)(url).status_code == 401, url


def test_others_read_but_do_not_change_a_model(bob_api, alice, model, checkpoints):
    registry.register_version(model, checkpoints[0], alice)
    assert bob_api.get("/api/v1/models/resnet-prod").status_code == 200
    assert bob_api.get("/api/v1/models/resnet-prod/versions/1").status_code == 200
    for method, url, body in [
        ("patch", "/api/v1/models/resnet-prod", {"description": "mine"}),
        ("delete", "/api/v1/models/resnet-prod", None),
        ("post", "/api/v1/models/resnet-prod/versions", {"checkpoint": str(checkpoints[1].uuid)}),
        ("delete", "/api/v1/models/resnet-prod/versions/1", None),
    ]:
        response = getattr(bob_api, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)
        assert "model's owner" in response.data["message"]
    assert ModelVersion.objects.count() == 1


def test_anyone_may_register_a_checkpoint_they_can_read(bob, bob_api, checkpoints):
    """Registering needs read access to the checkpoint only: bob pins alice's checkpoint."""
    assert bob_api.post("/api/v1/models", {"name": "bobs"}).status_code == 201
    response = bob_api.post(
        "/api/v1/models/bobs/versions", {"checkpoint": str(checkpoints[0].uuid)}
    )
    assert response.status_code == 201
    assert response.data["registered_by"] == "bob"


def test_staff_change_any_model(staff_api, model, checkpoints):
    response = staff_api.post(
        "/api/v1/models/resnet-prod/versions", {"checkpoint": str(checkpoints[0].uuid)}
    )
    assert response.status_code == 201
    assert staff_api.patch("/api/v1/models/resnet-prod", {"labels": []}).status_code == 200
    assert staff_api.delete("/api/v1/models/resnet-prod").status_code == 204


def test_token_authentication_works(alice, model):
    from ckptweb.accounts.services import create_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_token(alice, 'test')[1]}")
    assert client.get("/api/v1/models/resnet-prod").status_code == 200


@pytest.mark.parametrize("query", ["search=a%00b", "label=a%00b", "ordering=nope", "page=x"])
def test_bad_query_parameters_are_not_500s(alice_api, model, query):
    response = alice_api.get(f"/api/v1/models?{query}")
    assert response.status_code in (200, 400, 404), response.status_code


def test_the_admin_lists_models_and_versions(client, staff, model, checkpoints, alice):
    registry.register_version(model, checkpoints[0], alice)
    client.force_login(staff)
    for url in (
        "/admin/experiments/model/",
        f"/admin/experiments/model/{model.pk}/change/",
        "/admin/experiments/modelversion/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert b"resnet-prod" in client.get("/admin/experiments/modelversion/").content


def test_checkpoints_name_their_versions(alice_api, alice, model, checkpoints, experiment):
    registry.register_version(model, checkpoints[1], alice)
    one = alice_api.get(f"/api/v1/checkpoints/{checkpoints[1].uuid}").json()
    assert one["model_versions"] == ["resnet-prod v1"]
    listed = alice_api.get(f"/api/v1/experiments/{experiment.pk}/checkpoints").json()["results"]
    assert {c["uuid"]: c["model_versions"] for c in listed} == {
        str(checkpoints[2].uuid): [],
        str(checkpoints[1].uuid): ["resnet-prod v1"],
        str(checkpoints[0].uuid): [],
    }


def test_deleting_files_of_a_registered_checkpoint_is_a_409(alice_api, alice, model, checkpoints):
    registry.register_version(model, checkpoints[0], alice)
    url = f"/api/v1/checkpoints/{checkpoints[0].uuid}/rm"
    response = alice_api.post(url, {"globs": ["code/**"]}, format="json")
    assert response.status_code == 409, response.content
    assert "resnet-prod v1" in response.json()["message"]
    checkpoint = Checkpoint.objects.get(pk=checkpoints[0].pk)
    assert checkpoint.state == "COMPLETED"
    assert "code/model_def.py" in checkpoint.resources
    alice_api.delete("/api/v1/models/resnet-prod/versions/1")
    assert alice_api.post(url, {"globs": ["code/**"]}, format="json").status_code == 202
