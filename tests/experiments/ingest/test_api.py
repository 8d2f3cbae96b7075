"""POST experiments/{id}/trials, GET trials/{id}, POST trials/{id}/validations and checkpoints."""

import json
import uuid

import pytest

from ckptweb.lib.errors import Conflict
from experiments import services
from experiments.gc import files, runs
from experiments.gc.retention import Policy
from experiments.models import Checkpoint, Validation

pytestmark = pytest.mark.django_db


def post_json(client, url, body):
    """POST raw JSON text (so NaN/Infinity literals can be sent)."""
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data, content_type="application/json")


def test_it_adds_a_trial(alice_api, experiment):
    response = post_json(
        alice_api, f"/api/v1/experiments/{experiment.pk}/trials", {"hparams": {"lr": 0.01}}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["experiment_id"] == experiment.pk
    assert body["hparams"] == {"lr": 0.01}
    detail = alice_api.get(f"/api/v1/trials/{body['id']}").json()
    assert detail["hparams"] == {"lr": 0.01}
    listing = alice_api.get(f"/api/v1/experiments/{experiment.pk}/trials").json()
    assert [t["id"] for t in listing["results"]] == [body["id"]]


def test_trial_hparams_must_be_an_object(alice_api, experiment):
    response = post_json(alice_api, f"/api/v1/experiments/{experiment.pk}/trials", {"hparams": [1]})
    assert response.status_code == 400
    assert "hparams" in response.json()["message"]


def test_unknown_experiment_is_404(alice_api, default_storage):
    assert post_json(alice_api, "/api/v1/experiments/999/trials", {}).status_code == 404


def test_it_reports_a_validation(alice_api, trial):
    response = post_json(
        alice_api,
        f"/api/v1/trials/{trial.pk}/validations",
        {"steps_completed": 100, "metrics": {"loss": 0.25, "acc": 1}},
    )
    assert response.status_code == 201, response.json()
    assert response.json()["metrics"] == {"loss": 0.25, "acc": 1}
    assert Validation.objects.get().steps_completed == 100
    listing = alice_api.get(f"/api/v1/trials/{trial.pk}/validations").json()
    assert listing["results"][0]["steps_completed"] == 100


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"steps_completed": 1, "metrics": {"loss": NaN}}', None),
        ('{"steps_completed": 1, "metrics": {"loss": Infinity}}', None),
        ('{"steps_completed": 1, "metrics": {"loss": -Infinity}}', None),
        ({"steps_completed": 1, "metrics": {"loss": "1.5"}}, "metrics"),
        ({"steps_completed": 1, "metrics": {"loss": True}}, "metrics"),
        ({"steps_completed": 1, "metrics": {"loss": 1e400}}, None),
        ({"steps_completed": 1, "metrics": {}}, "metrics"),
        ({"steps_completed": 1, "metrics": [1]}, "metrics"),
        ({"steps_completed": -1, "metrics": {"loss": 1}}, "steps_completed"),
        ({"steps_completed": 1.5, "metrics": {"loss": 1}}, "steps_completed"),
        ({"steps_completed": 2**63, "metrics": {"loss": 1}}, "steps_completed"),
        ({"metrics": {"loss": 1}}, "steps_completed"),
        ("not json", None),
    ],
)
def test_bad_validations_are_400(alice_api, trial, body, field):
    if isinstance(body, dict) and body.get("metrics") == {"loss": 1e400}:
        body = '{"steps_completed": 1, "metrics": {"loss": 1e400}}'
    response = post_json(alice_api, f"/api/v1/trials/{trial.pk}/validations", body)
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()["message"]
    assert not Validation.objects.exists()


def test_it_reports_a_checkpoint(alice_api, trial):
    ckpt_uuid = str(uuid.uuid4())
    response = post_json(
        alice_api,
        f"/api/v1/trials/{trial.pk}/checkpoints",
        {
            "uuid": ckpt_uuid,
            "steps_completed": 100,
            "resources": {"state-dict.pth": 10, "code/model_def.py": 5},
            "metadata": {"framework": "torch"},
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"id", "uuid", "state"}
    assert body["uuid"] == ckpt_uuid
    assert body["state"] == "COMPLETED"
    checkpoint = Checkpoint.objects.get(uuid=ckpt_uuid)
    assert checkpoint.size_bytes == 15
    assert checkpoint.metadata == {"framework": "torch"}


def test_it_generates_a_uuid(alice_api, trial):
    response = post_json(
        alice_api, f"/api/v1/trials/{trial.pk}/checkpoints", {"steps_completed": 1}
    )
    assert response.status_code == 201
    assert uuid.UUID(response.json()["uuid"])


def test_a_validation_links_before_or_after_its_checkpoint(alice_api, trial):
    url = f"/api/v1/trials/{trial.pk}/"
    post_json(alice_api, url + "validations", {"steps_completed": 100, "metrics": {"loss": 0.5}})
    first = post_json(alice_api, url + "checkpoints", {"steps_completed": 100}).json()
    second = post_json(alice_api, url + "checkpoints", {"steps_completed": 200}).json()
    post_json(alice_api, url + "validations", {"steps_completed": 200, "metrics": {"loss": 0.4}})
    got = {
        c["uuid"]: c["validation_metric"]
        for c in alice_api.get(url + "checkpoints").json()["results"]
    }
    assert got == {first["uuid"]: 0.5, second["uuid"]: 0.4}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps_completed": -5}, "steps_completed"),
        ({"steps_completed": "ten"}, "steps_completed"),
        ({}, "steps_completed"),
        ({"steps_completed": 1, "resources": {"../escape": 1}}, "resources"),
        ({"steps_completed": 1, "resources": {"a/../../b": 1}}, "resources"),
        ({"steps_completed": 1, "resources": {"/etc/passwd": 1}}, "resources"),
        ({"steps_completed": 1, "resources": {"a": -1}}, "resources"),
        ({"steps_completed": 1, "resources": {"a": "12"}}, "resources"),
        ({"steps_completed": 1, "resources": {"a": 1.5}}, "resources"),
        ({"steps_completed": 1, "resources": {"a": True}}, "resources"),
        ({"steps_completed": 1, "resources": {"a": 2**62, "b": 2**62}}, "resources"),
        ({"steps_completed": 1, "resources": ["a"]}, "resources"),
        ({"steps_completed": 1, "metadata": [1]}, "metadata"),
        ({"steps_completed": 1, "metadata": {"a": "x" * (1024 * 1024)}}, "metadata"),
        ({"steps_completed": 1, "metadata": {"a": "nul\u0000"}}, "metadata"),
        ({"steps_completed": 1, "uuid": "not-a-uuid"}, "uuid"),
    ],
)
def test_bad_checkpoints_are_400_naming_the_field(alice_api, trial, body, field):
    response = post_json(alice_api, f"/api/v1/trials/{trial.pk}/checkpoints", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["message"]
    assert not Checkpoint.objects.exists()


def test_metadata_nan_literal_is_400(alice_api, trial):
    response = post_json(
        alice_api,
        f"/api/v1/trials/{trial.pk}/checkpoints",
        '{"steps_completed": 1, "metadata": {"x": NaN}}',
    )
    assert response.status_code == 400


def test_duplicate_uuid_is_400(alice_api, trial, checkpoint):
    response = post_json(
        alice_api,
        f"/api/v1/trials/{trial.pk}/checkpoints",
        {"uuid": str(checkpoint.uuid), "steps_completed": 7},
    )
    assert response.status_code == 400
    assert "uuid" in response.json()["message"]
    assert Checkpoint.objects.count() == 1


def test_unknown_trial_is_404(alice_api, default_storage):
    response = post_json(alice_api, "/api/v1/trials/4242/checkpoints", {"steps_completed": 1})
    assert response.status_code == 404
    response = post_json(
        alice_api, "/api/v1/trials/4242/validations", {"steps_completed": 1, "metrics": {"loss": 1}}
    )
    assert response.status_code == 404


def test_nothing_is_reported_into_a_deleting_experiment(alice_api, experiment, trial):
    experiment.state = "DELETING"
    experiment.save()
    response = post_json(
        alice_api, f"/api/v1/trials/{trial.pk}/checkpoints", {"steps_completed": 1}
    )
    assert response.status_code == 409
    assert "deleted" in response.json()["message"]


DELETING_WRITES = {
    "trial": ("post", "/api/v1/experiments/{e}/trials", {"hparams": {}}),
    "validation": (
        "post",
        "/api/v1/trials/{t}/validations",
        {"steps_completed": 1, "metrics": {"loss": 1}},
    ),
    "checkpoint": ("post", "/api/v1/trials/{t}/checkpoints", {"steps_completed": 1}),
    "state": ("patch", "/api/v1/experiments/{e}", {"state": "ACTIVE"}),
    "gc-policy": (
        "put",
        "/api/v1/experiments/{e}/gc-policy",
        {"save_experiment_best": 1, "save_trial_best": 1, "save_trial_latest": 1},
    ),
    "delete": ("delete", "/api/v1/experiments/{e}", None),
    "delete-checkpoint": ("delete", "/api/v1/checkpoints/{c}", None),
    "rm": ("post", "/api/v1/checkpoints/{c}/rm", {"globs": ["*"]}),
}


@pytest.mark.parametrize("write", DELETING_WRITES)
def test_every_write_into_a_deleting_experiment_is_the_same_409(
    alice_api, experiment, trial, checkpoint, write
):
    experiment.state = "DELETING"
    experiment.save()
    method, url, body = DELETING_WRITES[write]
    url = url.format(e=experiment.pk, t=trial.pk, c=checkpoint.uuid)
    response = getattr(alice_api, method)(url, body, format="json")
    assert response.status_code == 409, response.content
    message = f"experiment {experiment.pk} is being deleted."
    assert response.json() == {"detail": message, "message": message}


def test_the_services_refuse_a_deleting_experiment_themselves(experiment, trial, checkpoint):
    experiment.state = "DELETING"
    experiment.save()
    trial.experiment = experiment
    calls = [
        lambda: services.create_trial(experiment),
        lambda: services.report_validation(trial, 1, {"loss": 1.0}),
        lambda: services.report_checkpoint(trial, 1),
        lambda: services.set_experiment_state(experiment, "PAUSED"),  # was a 400
        lambda: runs.set_gc_policy(experiment, Policy(1, 1, 1)),
        lambda: runs.delete_experiment(experiment),
        lambda: runs.delete_checkpoint(checkpoint),
        lambda: files.delete_files(checkpoint, ["*"]),
    ]
    for call in calls:
        checkpoint.experiment = experiment
        with pytest.raises(Conflict, match=f"experiment {experiment.pk} is being deleted"):
            call()
