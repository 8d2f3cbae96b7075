"""``Client.set_trial_state`` and the ``trial``/``experiment`` blocks against a live server.

ckptweb/client/lifecycle.py: a trial block ends its trial COMPLETED, or ERROR when the block
raises (the exception goes on, never replaced); the last trial's end ends the experiment on
the server and its policy runs.
"""

import os
import uuid

import pytest

from ckptweb.client import ApiError, Client
from experiments.models import Checkpoint, Experiment, GCRun, Trial
from tests.factories import write_files

pytestmark = pytest.mark.django_db(transaction=True)

#: Keep each trial's latest checkpoint only.
CONFIG = {
    "searcher": {"metric": "loss"},
    "checkpoint_storage": {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 1},
}


@pytest.fixture
def client(live_server, token, default_storage):
    return Client(url=live_server.url, token=token)


def report(client, storage, trial_id, steps):
    """A checkpoint with a file on the default shared_fs storage, and its validation."""
    checkpoint_uuid = str(uuid.uuid4())
    data = os.urandom(64)
    write_files(storage, checkpoint_uuid, {"state-dict.pth": data})
    client.report_validation(trial_id, steps, {"loss": 1 / steps})
    client.report_checkpoint(trial_id, steps, {"state-dict.pth": len(data)}, uuid=checkpoint_uuid)
    return checkpoint_uuid


def test_trial_blocks_end_the_experiment_and_its_policy_runs(client, default_storage):
    trials = []
    with client.experiment("blocks", CONFIG) as experiment:
        for lr in (0.1, 0.01):
            with client.trial(experiment["id"], {"lr": lr}) as trial:
                trials.append(trial)
                # the trials run one after the other: the block holds the experiment open
                assert Experiment.objects.get(pk=experiment["id"]).state == "ACTIVE"
                for steps in (10, 20, 30):
                    report(client, default_storage, trial["id"], steps)
    assert [trial["state"] for trial in trials] == ["COMPLETED", "COMPLETED"]
    first, second = Trial.objects.filter(experiment_id=experiment["id"]).order_by("id")
    assert (first.state, second.state, first.hparams) == ("COMPLETED", "COMPLETED", {"lr": 0.1})
    assert Experiment.objects.get(pk=experiment["id"]).state == "COMPLETED"
    assert trial["experiment_state"] == "COMPLETED"
    (run,) = GCRun.objects.filter(experiment_id=experiment["id"])
    assert trial["gc_run"]["id"] == run.pk
    assert client.wait_for_gc_run(run.pk, poll=0.1, timeout=60)["state"] == "SUCCEEDED"
    rows = list(
        Checkpoint.objects.filter(experiment_id=experiment["id"])
        .order_by("trial_id", "steps_completed")
        .values_list("steps_completed", "state", "uuid")
    )
    assert [(steps, state) for steps, state, _ in rows] == [
        (10, "DELETED"),
        (20, "DELETED"),
        (30, "COMPLETED"),
    ] * 2
    root = default_storage.host_path
    for _steps, state, checkpoint_uuid in rows:
        assert os.path.exists(os.path.join(root, str(checkpoint_uuid))) == (state == "COMPLETED")


def test_an_exception_ends_the_trial_error_and_goes_on(client):
    experiment = client.create_experiment(CONFIG, "fails")
    with pytest.raises(ZeroDivisionError) as raised, client.trial(experiment["id"]) as trial:
        1 / 0  # noqa: B018
    assert not getattr(raised.value, "__notes__", None)
    assert trial["state"] == "ERROR"
    assert Trial.objects.get(pk=trial["id"]).state == "ERROR"
    # its only trial failed: the experiment ended ERROR, and its policy runs all the same
    assert Experiment.objects.get(pk=experiment["id"]).state == "ERROR"
    assert GCRun.objects.filter(experiment_id=experiment["id"]).count() == 1


def test_a_failure_to_end_the_trial_never_hides_the_exception(client):
    experiment = client.create_experiment(CONFIG, "canceled meanwhile")
    with pytest.raises(KeyError) as raised, client.trial(experiment["id"]) as trial:
        client.set_experiment_state(experiment["id"], "CANCELED")  # the PATCH on exit: 409
        raise KeyError("the training's own error")
    assert raised.value.args == ("the training's own error",)
    (note,) = raised.value.__notes__
    assert note == (
        f"ckptweb: trial {trial['id']} could not be set ERROR: experiment {experiment['id']} "
        "is CANCELED: its trials can no longer change."
    )
    assert Trial.objects.get(pk=trial["id"]).state == "CANCELED"  # ended with its experiment


def test_a_block_that_ends_well_raises_when_the_trial_cannot_end(client):
    experiment = client.create_experiment(CONFIG, "ended by hand")
    with pytest.raises(ApiError) as raised, client.trial(experiment["id"]) as trial:
        client.set_experiment_state(experiment["id"], "CANCELED")
    assert raised.value.status == 409
    assert "can no longer change" in str(raised.value)
    assert Trial.objects.get(pk=trial["id"]).state == "CANCELED"  # ended with its experiment


def test_an_exception_in_an_experiment_block_ends_its_running_trials_error(client):
    with pytest.raises(RuntimeError), client.experiment("half done", CONFIG) as experiment:
        with client.trial(experiment["id"], {"lr": 1}):
            pass
        left_running = client.create_trial(experiment["id"], {"lr": 2})
        paused = client.create_trial(experiment["id"], {"lr": 3})
        assert client.set_trial_state(paused["id"], "PAUSED")["experiment_state"] == "ACTIVE"
        raise RuntimeError("out of memory")
    states = dict(Trial.objects.filter(experiment_id=experiment["id"]).values_list("id", "state"))
    assert states[left_running["id"]] == states[paused["id"]] == "ERROR"
    assert sorted(states.values()) == ["COMPLETED", "ERROR", "ERROR"]
    # one trial completed: the experiment completed
    assert Experiment.objects.get(pk=experiment["id"]).state == "COMPLETED"
    assert GCRun.objects.filter(experiment_id=experiment["id"]).count() == 1


def test_an_experiment_block_that_fails_before_any_trial_ends_error(client):
    with pytest.raises(ValueError), client.experiment("no trial", CONFIG) as experiment:
        raise ValueError("bad data")
    assert Experiment.objects.get(pk=experiment["id"]).state == "ERROR"
    assert GCRun.objects.filter(experiment_id=experiment["id"]).count() == 1
