"""PATCH trials/{id} {state}: the trial's lifecycle, and the experiment's end it brings.

docs/architecture.md "One writer per state": ``services.set_trial_state``. The last trial to
end ends the experiment (COMPLETED if one completed, else CANCELED if one was canceled, else
ERROR), and the GC run that starts deletes what the policy says.
"""

import pytest

from ckptweb.jobs import RunState
from experiments import services
from experiments.choices import CheckpointState, GCReason
from experiments.models import Experiment, GCRun, Trial
from tests.experiments.gc.builders import assert_gc_invariant, expected_files, labels_in_state
from tests.spec import spec_example

pytestmark = pytest.mark.django_db


def patch(client, trial, state):
    return client.patch(f"/api/v1/trials/{trial.pk}", {"state": state}, format="json")


def state_of(trial) -> str:
    return Trial.objects.get(pk=trial.pk).state


def test_the_last_trial_to_end_ends_the_experiment_and_its_policy_runs(
    alice, fs_location, alice_api, run_on_commit
):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    first, second = experiment.trials.order_by("id")

    response = patch(alice_api, first, "COMPLETED")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["state"], body["experiment_state"]) == (
        first.pk,
        "COMPLETED",
        "ACTIVE",
    )
    assert body["gc_run"] is None
    assert Experiment.objects.get(pk=experiment.pk).state == "ACTIVE"
    assert not GCRun.objects.filter(experiment=experiment).exists()
    assert labels_in_state(labels, CheckpointState.COMPLETED) == list(range(10, 0, -1))

    with run_on_commit():
        response = patch(alice_api, second, "ERROR")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["state"], body["experiment_state"]) == ("ERROR", "COMPLETED")
    assert Experiment.objects.get(pk=experiment.pk).state == "COMPLETED"
    (run,) = GCRun.objects.filter(experiment=experiment)
    assert body["gc_run"]["id"] == run.pk
    assert (run.reason, run.state) == (GCReason.EXPERIMENT_TERMINAL, RunState.SUCCEEDED)
    # policy 0/0/1: each trial's latest checkpoint stays, the other eight are deleted
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert labels_in_state(labels, CheckpointState.DELETED) == [9, 8, 7, 6, 4, 3, 2, 1]
    assert fs_location.listing() == expected_files(labels[n] for n in (10, 5))
    assert_gc_invariant(fs_location)


@pytest.mark.parametrize(
    ("ends", "experiment_state"),
    [
        (["ERROR", "COMPLETED"], "COMPLETED"),
        (["CANCELED", "COMPLETED", "ERROR"], "COMPLETED"),
        (["CANCELED", "CANCELED"], "CANCELED"),
        (["ERROR", "CANCELED"], "CANCELED"),
        (["ERROR", "ERROR"], "ERROR"),
        (["COMPLETED"], "COMPLETED"),
    ],
)
def test_the_experiment_ends_as_its_trials_did(alice_api, experiment, ends, experiment_state):
    trials = [services.create_trial(experiment) for _ in ends]
    for trial, state in zip(trials, ends, strict=True):
        assert Experiment.objects.get(pk=experiment.pk).state == "ACTIVE"
        response = patch(alice_api, trial, state)
        assert response.status_code == 200, response.json()
        assert state_of(trial) == state
    assert response.json()["experiment_state"] == experiment_state
    assert Experiment.objects.get(pk=experiment.pk).state == experiment_state
    (run,) = GCRun.objects.filter(experiment=experiment)
    assert run.reason == GCReason.EXPERIMENT_TERMINAL


def test_a_paused_trial_still_runs_so_the_experiment_goes_on(alice_api, experiment):
    first, second = services.create_trial(experiment), services.create_trial(experiment)
    assert patch(alice_api, first, "PAUSED").json()["state"] == "PAUSED"
    assert patch(alice_api, second, "COMPLETED").json()["experiment_state"] == "ACTIVE"
    assert Experiment.objects.get(pk=experiment.pk).state == "ACTIVE"
    assert patch(alice_api, first, "ACTIVE").json()["state"] == "ACTIVE"
    assert patch(alice_api, first, "ACTIVE").status_code == 200  # no change, no harm
    assert not GCRun.objects.exists()
    assert patch(alice_api, first, "CANCELED").json()["experiment_state"] == "COMPLETED"


@pytest.mark.parametrize("state", ["DONE", "completed", "", None, 3, ["ERROR"], "DELETING"])
def test_bad_states_are_400_naming_state_and_the_allowed_values(alice_api, trial, state):
    response = patch(alice_api, trial, state)
    assert response.status_code == 400, response.json()
    message = response.json()["message"]
    assert "state" in message
    if state not in (None, "", ["ERROR"]):
        assert "ACTIVE, PAUSED, COMPLETED, CANCELED, ERROR" in message
    assert state_of(trial) == "ACTIVE"


def test_a_missing_state_is_400(alice_api, trial):
    response = alice_api.patch(f"/api/v1/trials/{trial.pk}", {}, format="json")
    assert response.status_code == 400
    assert "state" in response.json()["message"]


def test_the_service_refuses_a_state_outside_the_machine(trial):
    with pytest.raises(services.ReportError) as refused:
        services.set_trial_state(trial, "DONE")
    assert refused.value.field == "state"
    assert state_of(trial) == "ACTIVE"


@pytest.mark.parametrize("ended", ["COMPLETED", "CANCELED", "ERROR"])
@pytest.mark.parametrize("then", ["ACTIVE", "PAUSED", "COMPLETED", "CANCELED", "ERROR"])
def test_an_ended_trial_never_changes_again(alice_api, experiment, ended, then):
    trial = services.create_trial(experiment)
    services.create_trial(experiment)  # keeps the experiment running
    assert patch(alice_api, trial, ended).status_code == 200
    response = patch(alice_api, trial, then)
    assert response.status_code == 409, response.json()
    assert response.json()["message"] == (
        f"trial {trial.pk} is already {ended}: an ended trial cannot change."
    )
    assert state_of(trial) == ended
    assert Experiment.objects.get(pk=experiment.pk).state == "ACTIVE"


def test_bob_cannot_change_alices_trial(bob_api, api, trial):
    response = patch(bob_api, trial, "COMPLETED")
    assert response.status_code == 403
    assert "owner" in response.json()["message"]
    assert patch(api, trial, "COMPLETED").status_code == 401
    assert state_of(trial) == "ACTIVE"
    assert Experiment.objects.get(pk=trial.experiment_id).state == "ACTIVE"
    assert not GCRun.objects.exists()


def test_staff_may_end_alices_trial(staff_api, trial):
    response = patch(staff_api, trial, "CANCELED")
    assert response.status_code == 200, response.json()
    assert state_of(trial) == "CANCELED"
    assert Experiment.objects.get(pk=trial.experiment_id).state == "CANCELED"


@pytest.mark.parametrize("experiment_state", ["COMPLETED", "CANCELED", "ERROR"])
def test_a_trial_of_an_ended_experiment_cannot_change(alice_api, trial, experiment_state):
    services.set_experiment_state(trial.experiment, experiment_state)
    response = patch(alice_api, trial, "COMPLETED")
    assert response.status_code == 409, response.json()
    assert response.json()["message"] == (
        f"experiment {trial.experiment_id} is {experiment_state}: its trials can no longer change."
    )
    assert state_of(trial) == experiment_state  # it ended with its experiment
    assert GCRun.objects.count() == 1  # the experiment's own end, no second run


def test_a_trial_of_an_experiment_being_deleted_cannot_change(alice_api, trial):
    from experiments.gc import runs

    runs.delete_experiment(trial.experiment)
    response = patch(alice_api, trial, "COMPLETED")
    assert response.status_code == 409
    assert "being deleted" in response.json()["message"]
    assert state_of(trial) == "ACTIVE"
    assert Experiment.objects.get(pk=trial.experiment_id).state == "DELETING"


def test_state_is_written_only_through_patch(alice_api, experiment, trial):
    created = alice_api.post(
        f"/api/v1/experiments/{experiment.pk}/trials",
        {"hparams": {}, "state": "COMPLETED"},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["state"] == "ACTIVE"
    assert Trial.objects.get(pk=created.json()["id"]).state == "ACTIVE"
    put = alice_api.put(f"/api/v1/trials/{trial.pk}", {"state": "COMPLETED"}, format="json")
    assert put.status_code == 405
    assert state_of(trial) == "ACTIVE"
    assert patch(alice_api, trial, "PAUSED").status_code == 200
    assert alice_api.get(f"/api/v1/trials/{trial.pk}").json()["state"] == "PAUSED"


def test_unknown_trials_are_404(alice_api):
    response = alice_api.patch("/api/v1/trials/999999", {"state": "COMPLETED"}, format="json")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_trials_ending_at_once_end_the_experiment_once(alice, default_storage):
    """The row lock serializes the ends: the second waits, then sees the first's commit."""
    import threading

    from django.db import connection, connections, transaction

    from tests.factories import make_experiment

    if connection.vendor != "postgresql":
        pytest.skip("row-lock ordering is PostgreSQL's; SQLite serializes every writer")
    experiment = make_experiment(alice, default_storage)
    first, second = services.create_trial(experiment), services.create_trial(experiment)
    ended, release, outcome = threading.Event(), threading.Event(), {}

    def end_first():
        try:
            with transaction.atomic():
                outcome["first"] = services.set_trial_state(first, "COMPLETED")
                ended.set()
                release.wait(10)
        finally:
            connections.close_all()

    def end_second():
        try:
            outcome["second"] = services.set_trial_state(second, "ERROR")
        finally:
            connections.close_all()

    one = threading.Thread(target=end_first)
    one.start()
    assert ended.wait(10)
    two = threading.Thread(target=end_second)
    two.start()
    two.join(0.5)
    assert two.is_alive(), "the second end must wait for the first's lock"
    release.set()
    one.join(10)
    two.join(10)
    assert outcome["first"] is None
    assert outcome["second"] is not None
    assert Experiment.objects.get(pk=experiment.pk).state == "COMPLETED"
    assert list(GCRun.objects.filter(experiment=experiment)) == [outcome["second"]]


@pytest.mark.parametrize("ended", ["COMPLETED", "CANCELED", "ERROR"])
def test_ending_the_experiment_by_hand_ends_its_running_trials(alice, alice_api, experiment, ended):
    """Before, PATCH experiments/{id} left its trials ACTIVE, and an ended experiment's trials
    can never change: they stayed "running" for good."""
    running, paused, done = (services.create_trial(experiment) for _ in range(3))
    Trial.objects.filter(pk=paused.pk).update(state="PAUSED")
    Trial.objects.filter(pk=done.pk).update(state="CANCELED")
    response = alice_api.patch(
        f"/api/v1/experiments/{experiment.pk}", {"state": ended}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert [state_of(t) for t in (running, paused, done)] == [ended, ended, "CANCELED"]
    assert patch(alice_api, running, "COMPLETED").status_code == 409
