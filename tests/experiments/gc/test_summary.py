"""The experiment summary kept by the services equals the aggregate recomputed from rows.

Real service calls only — single and batch ingest, validations either way, protect
toggles (page helper, bulk, API), GC runs executed eagerly (policy, single deletion, a
FILES run leaving a PARTIALLY_DELETED checkpoint, a failed batch) — and after each step the
stored row must match ``summary.computed``: the test that catches a counter drifting.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from experiments import batch, services, summary
from experiments.choices import CheckpointState
from experiments.gc import runs
from experiments.gc.files import delete_files
from experiments.models import Checkpoint, ExperimentSummary
from storage.backends.base import DeleteResult
from storage.backends.shared_fs import SharedFSBackend
from tests import factories
from tests.experiments.gc.builders import policy_of
from tests.factories import CHECKPOINT_FILES, add_checkpoint, experiment_on

pytestmark = pytest.mark.django_db

FIELDS = (
    "live",
    "deleted",
    "live_bytes",
    "candidates",
    "candidate_bytes",
    "protected",
    "best_metric",
)


def stored(experiment) -> dict:
    row = ExperimentSummary.objects.get(experiment_id=experiment.pk)
    return {name: getattr(row, name) for name in FIELDS}


def assert_in_step(experiment, step: str) -> None:
    assert stored(experiment) == summary.computed(experiment), f"summary drifted after {step}"


def test_the_summary_follows_every_service_operation(alice, alice_api, fs_location, run_on_commit):
    experiment = experiment_on(alice, fs_location, policy=(0, 0, 1))
    summary.refresh(experiment)  # the row exists from the start; every change is a delta
    one, two = services.create_trial(experiment), services.create_trial(experiment)
    for steps, metric in [(10, 0.9), (20, 0.5), (30, None)]:
        add_checkpoint(one, fs_location, steps, metric)
    assert_in_step(experiment, "single reports")
    assert stored(experiment)["best_metric"] == 0.5

    created = batch.report_checkpoints(
        two,
        [{"steps_completed": s, "resources": {"model.bin": 7 * s}} for s in (10, 20, 30, 40)],
    )
    for checkpoint in created:
        fs_location.put(str(checkpoint.uuid), "model.bin", b"x" * (7 * checkpoint.steps_completed))
    assert_in_step(experiment, "batch report")
    batch.report_validations(
        two,
        [
            {"steps_completed": 20, "metrics": {"loss": 0.1}},
            {"steps_completed": 99, "metrics": {"loss": 0.01}},
        ],
    )
    assert_in_step(experiment, "batch validations linked later (step 99 has no checkpoint)")
    assert stored(experiment)["best_metric"] == 0.1
    services.report_validation(two, 10, {"loss": 0.05})
    assert_in_step(experiment, "a validation linked later")

    services.set_protected(created[:2], True)
    services.set_protected(created[:3], True)  # one more; the two already protected count once
    assert_in_step(experiment, "bulk protect")
    response = alice_api.patch(
        f"/api/v1/checkpoints/{created[2].uuid}",
        {"protected": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert_in_step(experiment, "API unprotect")
    assert stored(experiment)["protected"] == 2

    with run_on_commit():
        runs.set_gc_policy(experiment, policy_of((0, 0, 1)))
    assert Checkpoint.objects.filter(state=CheckpointState.DELETED).exists()
    assert_in_step(experiment, "a policy GC run")

    survivor = Checkpoint.objects.filter(
        experiment=experiment, state=CheckpointState.COMPLETED, protected=False
    ).first()
    with run_on_commit():
        runs.delete_checkpoint(survivor)
    assert_in_step(experiment, "a single-checkpoint deletion")

    many = add_checkpoint(
        one, fs_location, 50, 0.3, files={**CHECKPOINT_FILES, "extra.txt": b"abc"}
    )
    with run_on_commit():
        delete_files(many, ["extra.txt"])
    assert Checkpoint.objects.get(pk=many.pk).state == CheckpointState.PARTIALLY_DELETED
    assert_in_step(experiment, "a FILES run")

    # Protected checkpoints are still there: protecting a deleted state-change target.
    services.set_protected(list(Checkpoint.objects.filter(experiment=experiment)), False)
    assert_in_step(experiment, "unprotect all")
    call_command("rebuild_summaries", experiment.pk)
    assert_in_step(experiment, "rebuild_summaries")


def test_a_failed_batch_and_its_reconciliation_keep_the_summary(
    alice, fs_location, run_on_commit, monkeypatch
):
    experiment = experiment_on(alice, fs_location, policy=(0, 0, 1))
    summary.refresh(experiment)
    trial = services.create_trial(experiment)
    for steps in (10, 20, 30):
        add_checkpoint(trial, fs_location, steps, None)

    def failing(self, uuids):
        return DeleteResult(errors=dict.fromkeys(uuids, "permission denied"))

    monkeypatch.setattr(SharedFSBackend, "delete_checkpoints", failing)
    monkeypatch.setattr(SharedFSBackend, "check_connection", lambda self: None)
    with run_on_commit():
        runs.set_gc_policy(experiment, policy_of((0, 0, 1)))
    assert Checkpoint.objects.filter(state=CheckpointState.ERROR).count() == 2
    assert_in_step(experiment, "a failed batch (ERROR)")
    monkeypatch.undo()
    with run_on_commit():
        runs.set_gc_policy(experiment, policy_of((0, 0, 2)))
    assert_in_step(experiment, "reconciling ERROR checkpoints and collecting again")


def test_a_missing_row_is_built_from_the_checkpoints_on_first_read(alice, default_storage):
    experiment = factories.make_experiment(alice, default_storage)  # not through the services
    trial = services.create_trial(experiment)
    factories.add_checkpoints(trial, [(10, 0.4)])  # no row yet: the delta is skipped, not wrong
    assert not ExperimentSummary.objects.filter(experiment_id=experiment.pk).exists()
    assert summary.summary_of(experiment).live == 1
    assert_in_step(experiment, "the lazy build")
