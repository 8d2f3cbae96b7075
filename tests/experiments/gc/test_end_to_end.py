"""GC through the REST API, end to end in the embedded default (tasks run in-process).

Gaps of issue 11: a policy run and an experiment deletion on GCS (the emulator), and GC
triggered by each terminal state — CANCELED and ERROR as well as COMPLETED.
"""

from __future__ import annotations

import pytest

from ckptweb.jobs import RunState
from experiments.choices import CheckpointState, GCReason
from experiments.models import Experiment, GCRun
from tests.experiments.gc.builders import assert_gc_invariant, expected_files, labels_in_state
from tests.spec import spec_example

pytestmark = pytest.mark.django_db


def test_a_policy_run_on_gcs(alice, gcs_location, alice_api, run_on_commit):
    experiment, labels = spec_example(alice, gcs_location, policy=(0, 1, 1))
    assert len(gcs_location.listing()) == 30
    body = {"save_experiment_best": 2, "save_trial_best": 1, "save_trial_latest": 1}
    with run_on_commit():
        response = alice_api.put(
            f"/api/v1/experiments/{experiment.pk}/gc-policy", body, format="json"
        )
    assert response.status_code == 202, response.json()
    run = alice_api.get(f"/api/v1/gc-runs/{response.json()['gc_run']['id']}").json()
    assert run["state"] == RunState.SUCCEEDED, run
    assert (run["total"], run["deleted"], run["failed"]) == (6, 6, 0)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 8, 7, 5]
    assert gcs_location.listing() == expected_files(labels[n] for n in (10, 8, 7, 5))
    assert_gc_invariant(gcs_location)


def test_deleting_an_experiment_on_gcs_removes_files_then_rows(
    alice, gcs_location, alice_api, run_on_commit
):
    experiment, labels = spec_example(alice, gcs_location)
    with run_on_commit():
        response = alice_api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert response.status_code == 202, response.json()
    assert gcs_location.listing() == set()
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert alice_api.get(f"/api/v1/experiments/{experiment.pk}").status_code == 404


@pytest.mark.parametrize("state", ["COMPLETED", "CANCELED", "ERROR"])
def test_every_terminal_state_triggers_gc(alice, fs_location, alice_api, run_on_commit, state):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    with run_on_commit():
        response = alice_api.patch(
            f"/api/v1/experiments/{experiment.pk}", {"state": state}, format="json"
        )
    assert response.status_code == 200, response.json()
    (run,) = GCRun.objects.filter(experiment=experiment)
    assert (run.reason, run.state) == (GCReason.EXPERIMENT_TERMINAL, RunState.SUCCEEDED)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert fs_location.listing() == expected_files(labels[n] for n in (10, 5))
    assert_gc_invariant(fs_location)


def test_a_second_terminal_state_starts_no_second_run(alice, fs_location, alice_api, run_on_commit):
    experiment, _labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    url = f"/api/v1/experiments/{experiment.pk}"
    with run_on_commit():
        alice_api.patch(url, {"state": "CANCELED"}, format="json")
        response = alice_api.patch(url, {"state": "ERROR"}, format="json")
    assert response.status_code == 200, response.json()
    assert GCRun.objects.filter(experiment=experiment).count() == 1
