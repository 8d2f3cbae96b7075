"""POST/GET experiments, GET/PATCH/DELETE experiments/{id}."""

import pytest

from experiments.models import Experiment, GCRun
from storage.models import StorageConfig
from tests.factories import make_experiment

pytestmark = pytest.mark.django_db

YAML_CONFIG = """
name: mnist
description: a small net
searcher:
  metric: validation_loss
  smaller_is_better: true
checkpoint_storage:
  save_trial_best: 2
hyperparameters:
  lr: 0.1
"""


#: The API's experiment fields (docs/architecture.md "REST API"), written out so the
#: serializer cannot drift from them.
EXPERIMENT_FIELDS = (
    "id name owner state searcher_metric smaller_is_better storage gc_policy config created_at"
)


def test_it_creates_from_yaml_text(alice_api, default_storage):
    response = alice_api.post("/api/v1/experiments", {"config": YAML_CONFIG}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "mnist"
    assert body["owner"] == "alice"
    assert body["state"] == "ACTIVE"
    assert body["searcher_metric"] == "validation_loss"
    assert body["smaller_is_better"] is True
    assert body["storage"] == default_storage.pk
    assert body["gc_policy"] == {
        "save_experiment_best": 0,
        "save_trial_best": 2,
        "save_trial_latest": 1,
    }
    assert body["config"]["hyperparameters"] == {"lr": 0.1}
    assert Experiment.objects.get(pk=body["id"]).owner.username == "alice"


def test_it_creates_from_an_object_and_name_overrides(alice_api, default_storage):
    config = {"searcher": {"metric": "acc", "smaller_is_better": False}}
    response = alice_api.post(
        "/api/v1/experiments", {"name": "named", "config": config}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "named"
    assert response.json()["smaller_is_better"] is False


def test_it_redacts_secrets(staff_api, default_storage):
    config = {
        "name": "s3",
        "searcher": {"metric": "loss"},
        "checkpoint_storage": {
            "type": "s3",
            "bucket": "b",
            "access_key": "AKIASECRET",
            "secret_key": "very-secret",
        },
    }
    StorageConfig.objects.create(
        name="team-s3", type="s3", bucket="b", access_key="AKIASECRET", secret_key="very-secret"
    )
    response = staff_api.post("/api/v1/experiments", {"config": config}, format="json")
    assert response.status_code == 201, response.json()
    assert "very-secret" not in response.content.decode()
    assert "AKIASECRET" not in response.content.decode()
    detail = staff_api.get(f"/api/v1/experiments/{response.json()['id']}")
    assert "very-secret" not in detail.content.decode()


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ("searcher: [unclosed", "config", "line"),
        ({"name": "x"}, "config", "metric"),
        ({"searcher": {"metric": "l"}, "checkpoint_storage": {"type": "ftp"}}, "config", "type"),
        (42, "config", "config"),
        ({"searcher": {"metric": "l"}}, "name", "name"),
    ],
)
def test_it_rejects_bad_configs_naming_the_field(alice_api, default_storage, config, field, words):
    response = alice_api.post("/api/v1/experiments", {"config": config}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body
    assert words in body["message"]


def test_it_requires_a_config(alice_api, default_storage):
    response = alice_api.post("/api/v1/experiments", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert "config" in response.json()["message"]


def test_it_lists_newest_first_with_state_filter(alice_api, alice, bob, default_storage):
    first = make_experiment(alice, default_storage, name="first")
    second = make_experiment(bob, default_storage, name="second")
    second.state = "COMPLETED"
    second.save()
    body = alice_api.get("/api/v1/experiments").json()
    assert body["count"] == 2
    assert [e["id"] for e in body["results"]] == [second.pk, first.pk]
    assert body["results"][0]["owner"] == "bob"

    completed = alice_api.get("/api/v1/experiments?state=COMPLETED").json()
    assert [e["id"] for e in completed["results"]] == [second.pk]
    assert alice_api.get("/api/v1/experiments?state=NOPE").status_code == 400


def test_it_orders_and_paginates(alice_api, alice, default_storage):
    names = [f"exp-{i:02d}" for i in range(55)]
    for name in reversed(names):
        make_experiment(alice, default_storage, name=name)
    page1 = alice_api.get("/api/v1/experiments?ordering=name").json()
    assert page1["count"] == 55
    assert [e["name"] for e in page1["results"]] == names[:50]
    page2 = alice_api.get("/api/v1/experiments?ordering=name&page=2").json()
    assert [e["name"] for e in page2["results"]] == names[50:]
    desc = alice_api.get("/api/v1/experiments?ordering=-name").json()
    assert desc["results"][0]["name"] == "exp-54"
    assert alice_api.get("/api/v1/experiments?ordering=secret_key").status_code == 400
    assert alice_api.get("/api/v1/experiments?page=9").status_code == 404


@pytest.mark.parametrize("size", [3, 30])
def test_list_query_count_is_fixed(
    alice_api, alice, bob, default_storage, size, django_assert_num_queries
):
    for i in range(size):
        make_experiment(alice if i % 2 else bob, default_storage, name=f"e{i}")
    # count + one page with owner and storage joined
    with django_assert_num_queries(2):
        response = alice_api.get("/api/v1/experiments")
    assert len(response.json()["results"]) == size


def test_it_shows_one(alice_api, experiment):
    body = alice_api.get(f"/api/v1/experiments/{experiment.pk}").json()
    assert body["id"] == experiment.pk
    assert set(body) >= set(EXPERIMENT_FIELDS.split())


@pytest.mark.parametrize("pk", ["999999", "abc", "1.5", "99999999999999999999999"])
def test_unknown_ids_are_404(alice_api, pk):
    response = alice_api.get(f"/api/v1/experiments/{pk}")
    assert response.status_code == 404
    assert response.json()["message"]


def test_patch_to_terminal_state_starts_gc(alice_api, experiment):
    response = alice_api.patch(
        f"/api/v1/experiments/{experiment.pk}", {"state": "COMPLETED"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "COMPLETED"
    assert body["gc_run"]["state"] == "PENDING"
    assert body["gc_run"]["experiment_id"] == experiment.pk
    assert GCRun.objects.filter(experiment=experiment).count() == 1


def test_patch_to_paused_starts_nothing(alice_api, experiment):
    response = alice_api.patch(
        f"/api/v1/experiments/{experiment.pk}", {"state": "PAUSED"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["gc_run"] is None
    assert not GCRun.objects.exists()


@pytest.mark.parametrize("state", ["DELETING", "DONE", "", None])
def test_patch_rejects_bad_states(alice_api, experiment, state):
    response = alice_api.patch(
        f"/api/v1/experiments/{experiment.pk}", {"state": state}, format="json"
    )
    assert response.status_code == 400
    assert "state" in response.json()["message"]


def test_delete_marks_deleting_and_returns_the_run(alice_api, experiment):
    response = alice_api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert response.status_code == 202
    run = response.json()["gc_run"]
    assert run["policy"] == {
        "save_experiment_best": 0,
        "save_trial_best": 0,
        "save_trial_latest": 0,
    }
    assert run["finished_at"] is None
    experiment.refresh_from_db()
    assert experiment.state == "DELETING"
    again = alice_api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert again.status_code == 409
    patch = alice_api.patch(
        f"/api/v1/experiments/{experiment.pk}", {"state": "ACTIVE"}, format="json"
    )
    assert patch.status_code == 409


def test_put_on_experiment_is_not_allowed(alice_api, experiment):
    response = alice_api.put(
        f"/api/v1/experiments/{experiment.pk}", {"state": "COMPLETED"}, format="json"
    )
    assert response.status_code == 405


@pytest.mark.django_db
def test_deleting_an_experiment_with_a_protected_checkpoint_is_refused(
    alice_api, alice, default_storage
):
    from experiments import services
    from experiments.models import Experiment

    experiment = services.create_experiment(alice, {"name": "p", "searcher": {"metric": "loss"}})
    trial = services.create_trial(experiment)
    checkpoint = services.report_checkpoint(trial, 10, {"a.bin": 1})
    checkpoint.protected = True
    checkpoint.save()
    response = alice_api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert response.status_code == 409
    assert "protected" in response.json()["message"]
    assert Experiment.objects.get(pk=experiment.pk).state == "ACTIVE"


NEW_LOCATION = {
    "name": "elsewhere",
    "searcher": {"metric": "loss"},
    "checkpoint_storage": {"type": "shared_fs", "host_path": "/srv/other-team"},
}


def test_only_staff_add_storage_locations(alice_api, staff_api, default_storage):
    response = alice_api.post("/api/v1/experiments", {"config": NEW_LOCATION}, format="json")
    assert response.status_code == 400
    assert "checkpoint_storage" in response.json()["message"]
    assert "/srv/other-team" in response.json()["message"]
    assert not StorageConfig.objects.filter(host_path="/srv/other-team").exists()
    response = staff_api.post("/api/v1/experiments", {"config": NEW_LOCATION}, format="json")
    assert response.status_code == 201, response.json()
    # Once staff added it, everyone may use it.
    response = alice_api.post("/api/v1/experiments", {"config": NEW_LOCATION}, format="json")
    assert response.status_code == 201, response.json()
