"""POST/GET trials/{id}/metrics: metrics groups other than validations (DESIGN.md "Metrics groups").

Stored as their own rows per (trial, group, steps), bounded as validations, listed by group,
and never read by retention: a training loss that would rank the checkpoints the other way
round changes nothing the policy keeps.
"""

import pytest

from ckptweb.client import Client
from ckptweb.lib.limits import InvalidInput
from experiments import batch, services
from experiments.choices import CheckpointState
from experiments.models import Checkpoint, TrialMetrics, Validation
from tests.experiments.gc.builders import labels_in_state
from tests.spec import spec_example

pytestmark = pytest.mark.django_db


def post(api, trial, body):
    return api.post(f"/api/v1/trials/{trial.pk}/metrics", body, format="json")


def test_it_stores_a_group_as_its_own_rows(alice_api, checkpoint):
    trial = checkpoint.trial
    validations = list(Validation.objects.filter(trial=trial).values_list("id", "metrics"))
    for steps, loss in ((10, 0.9), (20, 0.5), (20, 0.4)):
        body = {"group": "training", "steps_completed": steps, "metrics": {"loss": loss}}
        response = post(alice_api, trial, body)
        assert response.status_code == 201, response.json()
    response = post(
        alice_api, trial, {"group": "probe.v2", "steps_completed": 3, "metrics": {"x": 1}}
    )
    assert response.status_code == 201
    assert response.json()["group"] == "probe.v2"

    rows = TrialMetrics.objects.filter(trial=trial).order_by("id")
    assert [(r.group, r.steps_completed, r.metrics) for r in rows] == [
        ("training", 10, {"loss": 0.9}),
        ("training", 20, {"loss": 0.5}),
        ("training", 20, {"loss": 0.4}),
        ("probe.v2", 3, {"x": 1}),
    ]
    assert list(Validation.objects.filter(trial=trial).values_list("id", "metrics")) == validations
    listed = alice_api.get(f"/api/v1/trials/{trial.pk}/metrics?group=training").json()
    assert [(r["steps_completed"], r["metrics"]["loss"]) for r in listed["results"]] == [
        (10, 0.9),
        (20, 0.5),
        (20, 0.4),
    ]
    everything = alice_api.get(f"/api/v1/trials/{trial.pk}/metrics").json()
    assert [r["group"] for r in everything["results"]] == ["probe.v2", *["training"] * 3]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"group": "validation", "steps_completed": 1, "metrics": {"loss": 1}}, "group"),
        ({"group": "a b", "steps_completed": 1, "metrics": {"loss": 1}}, "group"),
        ({"group": "x" * 65, "steps_completed": 1, "metrics": {"loss": 1}}, "group"),
        ({"group": "training", "steps_completed": -1, "metrics": {"loss": 1}}, "steps_completed"),
        ({"group": "training", "steps_completed": 1, "metrics": {}}, "metrics"),
        ({"group": "training", "steps_completed": 1, "metrics": {"loss": "low"}}, "metrics"),
        ({"group": "training", "steps_completed": 1}, "metrics"),
    ],
)
def test_it_refuses_bad_reports_naming_the_field(alice_api, checkpoint, body, field):
    response = post(alice_api, checkpoint.trial, body)
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert not TrialMetrics.objects.exists()


def test_it_refuses_a_metrics_field_over_one_mebibyte(checkpoint):
    huge = {f"m{i}": 1.0 for i in range(100_000)}  # over 1 MiB encoded
    with pytest.raises(batch.BatchError) as refused:
        batch.report_metrics(
            checkpoint.trial, "training", [{"steps_completed": 1, "metrics": huge}]
        )
    assert "metrics" in refused.value.errors[0]
    assert not TrialMetrics.objects.exists()


def test_a_batch_is_bounded_as_validations(checkpoint):
    items = [{"steps_completed": n, "metrics": {"loss": 1.0}} for n in range(batch.MAX_BATCH + 1)]
    with pytest.raises(InvalidInput) as refused:
        batch.report_metrics(checkpoint.trial, "training", items)
    assert refused.value.field == "items"
    created = batch.report_metrics(checkpoint.trial, "training", items[: batch.MAX_BATCH])
    assert len(created) == TrialMetrics.objects.count() == batch.MAX_BATCH


def test_others_may_read_but_not_report(bob_api, checkpoint):
    body = {"group": "training", "steps_completed": 1, "metrics": {"loss": 1}}
    assert post(bob_api, checkpoint.trial, body).status_code == 403
    assert not TrialMetrics.objects.exists()


def test_the_client_reports_and_lists_them(live_server, token, checkpoint):
    client = Client(url=live_server.url, token=token)
    client.report_metrics(checkpoint.trial_id, "training", 7, {"loss": 0.25, "lr": 1e-3})
    rows = list(client.list_metrics(checkpoint.trial_id, group="training"))
    assert [(r["steps_completed"], r["metrics"]) for r in rows] == [(7, {"loss": 0.25, "lr": 1e-3})]
    assert TrialMetrics.objects.get().metrics == {"loss": 0.25, "lr": 1e-3}


def test_retention_never_reads_them(alice, fs_location, run_on_commit):
    """Policy 2/1/0 keeps 8, 7, 5 (the spec's table); a training ``loss`` that ranks every
    checkpoint the other way round, reported at every checkpoint's step, keeps the same."""
    experiment, checkpoints = spec_example(alice, fs_location, policy=(2, 1, 0))
    for number, checkpoint in checkpoints.items():
        item = {"steps_completed": checkpoint.steps_completed, "metrics": {"loss": -100.0 + number}}
        batch.report_metrics(checkpoint.trial, "training", [item])
    before = dict(Checkpoint.objects.values_list("id", "validation_metric"))
    with run_on_commit():
        for trial in experiment.trials.all():
            services.set_trial_state(trial, "COMPLETED")
    assert dict(Checkpoint.objects.values_list("id", "validation_metric")) == before
    assert labels_in_state(checkpoints, CheckpointState.COMPLETED) == [8, 7, 5]


def test_deleting_the_experiment_deletes_its_groups_and_logs(
    alice_api, alice, trial, run_on_commit
):
    from experiments import logs
    from experiments.models import Experiment, TrialLog

    batch.report_metrics(trial, "training", [{"steps_completed": 1, "metrics": {"loss": 1}}])
    logs.append_trial_logs(trial, [("epoch 1", None)])
    with run_on_commit():
        response = alice_api.delete(f"/api/v1/experiments/{trial.experiment_id}")
    assert response.status_code == 202, response.json()
    assert not Experiment.objects.filter(pk=trial.experiment_id).exists()
    assert not TrialMetrics.objects.exists() and not TrialLog.objects.exists()
    body = {"group": "training", "steps_completed": 2, "metrics": {"loss": 1}}
    assert post(alice_api, trial, body).status_code == 404


def test_an_experiment_being_deleted_takes_no_reports(alice_api, trial):
    from experiments.models import Experiment

    Experiment.objects.filter(pk=trial.experiment_id).update(state="DELETING")
    body = {"group": "training", "steps_completed": 2, "metrics": {"loss": 1}}
    assert post(alice_api, trial, body).status_code == 409
    assert not TrialMetrics.objects.exists()
