"""The periodic sweep (eager mode): dead runs are finished, ERROR checkpoints retried only
when the current policy still deletes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import gc_sweep, services, tasks
from experiments.choices import CheckpointState, GCReason, GCRunState
from experiments.models import Experiment, GCRun
from tests.gc.builders import (
    assert_gc_invariant,
    assert_retained_intact,
    crashed_run,
    failed_checkpoint,
    labels_in_state,
    policy_of,
    spec_example,
)

pytestmark = pytest.mark.django_db


def test_the_sweep_finishes_the_work_of_a_dead_run(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    dead = crashed_run(experiment)
    assert labels_in_state(labels, CheckpointState.DELETING) == [9, 8, 7, 6, 4, 3, 2, 1]
    with run_on_commit():
        started = tasks.gc_sweep.apply().get()
    dead.refresh_from_db()
    assert dead.state == GCRunState.FAILED and dead.finished_at
    (sweep_run,) = GCRun.objects.filter(pk__in=started)
    assert (sweep_run.reason, sweep_run.state) == (GCReason.SWEEP, GCRunState.SUCCEEDED)
    assert (sweep_run.total, sweep_run.deleted) == (8, 8)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert_gc_invariant(fs_store)


def test_the_sweep_leaves_a_live_run_alone(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    live = crashed_run(experiment, minutes_ago=0)
    with run_on_commit():
        assert gc_sweep.sweep() == []
    live.refresh_from_db()
    assert live.state == GCRunState.RUNNING
    assert labels_in_state(labels, CheckpointState.DELETING) == [9, 8, 7, 6, 4, 3, 2, 1]
    assert len(fs_store.listing()) == 30


def test_the_sweep_resends_a_run_that_never_started(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    lost = services.start_gc_run(experiment, GCReason.POLICY_CHANGED)  # never sent
    GCRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with run_on_commit():
        gc_sweep.sweep()
    lost.refresh_from_db()
    assert lost.state == GCRunState.SUCCEEDED and lost.deleted == 8
    assert_gc_invariant(fs_store)


def test_an_error_checkpoint_the_policy_still_deletes_is_retried(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    failed_checkpoint(labels[3], remove=["metadata.json"], store=fs_store)
    failed_checkpoint(labels[4])
    with run_on_commit():
        (run_id,) = gc_sweep.sweep()
    run = GCRun.objects.get(pk=run_id)
    assert (run.reason, run.state) == (GCReason.SWEEP, GCRunState.SUCCEEDED)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert labels_in_state(labels, CheckpointState.DELETED) == [9, 8, 7, 6, 4, 3, 2, 1]
    assert_gc_invariant(fs_store)


def test_an_intact_error_checkpoint_now_retained_is_completed_again(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    failed_checkpoint(labels[9])  # its deletion failed before any file went
    Experiment.objects.filter(pk=experiment.pk).update(save_trial_latest=2)  # now kept
    with run_on_commit():
        gc_sweep.sweep()
    labels[9].refresh_from_db()
    assert (labels[9].state, labels[9].error) == (CheckpointState.COMPLETED, "")
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 9, 5, 4]
    experiment.refresh_from_db()
    assert_retained_intact(experiment, policy_of((0, 0, 2)), fs_store)
    assert_gc_invariant(fs_store)


def test_a_damaged_error_checkpoint_now_retained_keeps_what_is_left(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    failed_checkpoint(labels[10], remove=["metadata.json"], store=fs_store)
    with run_on_commit():
        gc_sweep.sweep()
    labels[10].refresh_from_db()
    assert labels[10].state == CheckpointState.PARTIALLY_DELETED
    assert labels[10].error == "permission denied"
    left = {(str(labels[10].uuid), "state-dict.pth"), (str(labels[10].uuid), "code/model_def.py")}
    assert left <= fs_store.listing()
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [5]
    assert_gc_invariant(fs_store)


def test_an_error_checkpoint_whose_storage_cannot_be_listed_stays_error(
    alice, fs_store, run_on_commit, monkeypatch
):
    from storage.backends.base import StorageError
    from storage.backends.shared_fs import SharedFSBackend

    experiment, labels = spec_example(alice, fs_store, policy=(10, 10, 10))
    failed_checkpoint(labels[1])

    def unlistable(self, checkpoint_uuid):
        raise StorageError("cannot list")

    monkeypatch.setattr(SharedFSBackend, "list_files", unlistable)
    with run_on_commit():
        gc_sweep.sweep()
    labels[1].refresh_from_db()
    assert labels[1].state == CheckpointState.ERROR
    assert len(fs_store.listing()) == 30
