"""The sweep retries only the deletions that were asked for (issue 25, item 1).

The attack: on an ACTIVE experiment (policy 0/1/1) one checkpoint is deleted while its
storage fails (it ends ERROR). When the storage is back, the sweep's run reconciled it and
then applied the whole policy, deleting checkpoints nobody asked to delete. A running
experiment's policy is applied only by an explicit policy change.
"""

from pathlib import Path

import pytest

from experiments import services
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import runs
from experiments.gc.execute import execute_run
from experiments.gc.sweep import sweep
from experiments.models import Checkpoint, GCRun
from storage.backends.shared_fs import SharedFSBackend
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def active(alice, default_storage):
    """An ACTIVE experiment (0/1/1) with four checkpoints of one trial, files on disk."""
    experiment = factories.make_experiment(alice, default_storage)
    experiment.save_experiment_best, experiment.save_trial_best = 0, 1
    experiment.save_trial_latest = 1
    experiment.save()
    trial = services.create_trial(experiment, {})
    made = [
        factories.report_with_files(default_storage, trial, steps, {"w.bin": b"x" * steps}, loss)
        for steps, loss in ((100, 0.4), (200, 0.5), (300, 0.6), (400, 0.7))
    ]
    assert experiment.state == ExperimentState.ACTIVE
    return experiment, made


def failing_unlink(path):
    raise PermissionError(13, "Permission denied")


def test_a_failed_deletion_is_retried_and_nothing_else_goes(active, default_storage, monkeypatch):
    experiment, (best, second, third, latest) = active
    with monkeypatch.context() as patched:
        patched.setattr(SharedFSBackend, "remove_file", staticmethod(failing_unlink))
        run = runs.delete_checkpoint(second)  # the user asks for this one only
        execute_run(run.pk)
    second.refresh_from_db()
    assert second.state == CheckpointState.ERROR

    started = sweep()  # the storage works again
    for run_id in started:
        execute_run(run_id)

    states = dict(Checkpoint.objects.values_list("pk", "state"))
    assert states[second.pk] == CheckpointState.DELETED  # the asked deletion, retried
    # The policy (0/1/1) would delete the third too; nobody asked for that on a running
    # experiment, so it stays, with its files.
    assert states[third.pk] == CheckpointState.COMPLETED
    assert states[best.pk] == states[latest.pk] == CheckpointState.COMPLETED
    root = Path(default_storage.host_path)
    assert (root / str(third.uuid) / "w.bin").exists()
    assert not (root / str(second.uuid)).exists()
    assert GCRun.objects.filter(reason=GCReason.SWEEP).exists()


def test_an_explicit_policy_change_still_applies_the_policy(active):
    experiment, (best, second, third, latest) = active
    run = runs.set_gc_policy(experiment, experiment.gc_policy)
    execute_run(run.pk)
    states = dict(Checkpoint.objects.values_list("pk", "state"))
    assert states[second.pk] == states[third.pk] == CheckpointState.DELETED
    assert states[best.pk] == states[latest.pk] == CheckpointState.COMPLETED
