"""How GC recovers: the periodic sweep, and the embedded default (no broker, no beat).

The sweep (eager mode) finishes dead runs and retries ERROR checkpoints only when the
current policy still deletes them. Embedded: a failed deletion is retried by the next run of
a policy that still deletes it, an unexpected error ends a run at once, and the sweep
timer's ``tick`` resumes a run whose heartbeat stopped. ``test_attacks/test_gc_resume.py``
kills a real server mid-run; these are the same rules checked in-process.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from ckptweb.jobs import RunState
from experiments import tasks
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import execute, runs, sweep
from experiments.models import Experiment, GCRun
from tests.experiments.gc.builders import (
    assert_gc_invariant,
    assert_retained_intact,
    crashed_run,
    failed_checkpoint,
    labels_in_state,
    policy_of,
)
from tests.spec import spec_example

pytestmark = pytest.mark.django_db

# --- the periodic sweep ----------------------------------------------------------------------


def assert_completed_again_under_0_0_2(experiment, labels, fs_location):
    """Label 9 (an ERROR checkpoint with all its files) is COMPLETED again, kept by (0, 0, 2)."""
    labels[9].refresh_from_db()
    assert (labels[9].state, labels[9].error) == (CheckpointState.COMPLETED, "")
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 9, 5, 4]
    experiment.refresh_from_db()
    assert_retained_intact(experiment, policy_of((0, 0, 2)), fs_location)
    assert_gc_invariant(fs_location)


def test_the_sweep_finishes_the_work_of_a_dead_run(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    dead = crashed_run(experiment)
    assert labels_in_state(labels, CheckpointState.DELETING) == [9, 8, 7, 6, 4, 3, 2, 1]
    with run_on_commit():
        started = tasks.gc_sweep.apply().get()
    dead.refresh_from_db()
    assert dead.state == RunState.FAILED and dead.finished_at
    (sweep_run,) = GCRun.objects.filter(pk__in=started)
    assert (sweep_run.reason, sweep_run.state) == (GCReason.SWEEP, RunState.SUCCEEDED)
    assert (sweep_run.total, sweep_run.deleted) == (8, 8)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert_gc_invariant(fs_location)


def test_the_sweep_leaves_a_live_run_alone(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    live = crashed_run(experiment, minutes_ago=0)
    with run_on_commit():
        assert sweep.sweep() == []
    live.refresh_from_db()
    assert live.state == RunState.RUNNING
    assert labels_in_state(labels, CheckpointState.DELETING) == [9, 8, 7, 6, 4, 3, 2, 1]
    assert len(fs_location.listing()) == 30


def test_the_sweep_resends_a_run_that_never_started(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    lost = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED)  # never sent
    GCRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with run_on_commit():
        sweep.sweep()
    lost.refresh_from_db()
    assert lost.state == RunState.SUCCEEDED and lost.deleted == 8
    assert_gc_invariant(fs_location)


def ended(experiment) -> None:
    """The experiment has ended (its GC policy was asked for); no run started here."""
    Experiment.objects.filter(pk=experiment.pk).update(state=ExperimentState.COMPLETED)


def test_an_error_checkpoint_the_policy_still_deletes_is_retried(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    ended(experiment)  # the sweep applies the policy only to an ended experiment
    failed_checkpoint(labels[3], remove=["metadata.json"], store=fs_location)
    failed_checkpoint(labels[4])
    with run_on_commit():
        (run_id,) = sweep.sweep()
    run = GCRun.objects.get(pk=run_id)
    assert (run.reason, run.state) == (GCReason.SWEEP, RunState.SUCCEEDED)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert labels_in_state(labels, CheckpointState.DELETED) == [9, 8, 7, 6, 4, 3, 2, 1]
    assert_gc_invariant(fs_location)


def test_an_intact_error_checkpoint_now_retained_is_completed_again(
    alice, fs_location, run_on_commit
):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    ended(experiment)  # the sweep applies the policy only to an ended experiment
    failed_checkpoint(labels[9])  # its deletion failed before any file went
    Experiment.objects.filter(pk=experiment.pk).update(save_trial_latest=2)  # now kept
    with run_on_commit():
        sweep.sweep()
    assert_completed_again_under_0_0_2(experiment, labels, fs_location)


def test_a_damaged_error_checkpoint_now_retained_keeps_what_is_left(
    alice, fs_location, run_on_commit
):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    ended(experiment)  # the sweep applies the policy only to an ended experiment
    failed_checkpoint(labels[10], remove=["metadata.json"], store=fs_location)
    with run_on_commit():
        sweep.sweep()
    labels[10].refresh_from_db()
    assert labels[10].state == CheckpointState.PARTIALLY_DELETED
    assert labels[10].error == "permission denied"
    left = {(str(labels[10].uuid), "state-dict.pth"), (str(labels[10].uuid), "code/model_def.py")}
    assert left <= fs_location.listing()
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [5]
    assert_gc_invariant(fs_location)


def test_an_error_checkpoint_whose_storage_cannot_be_listed_stays_error(
    alice, fs_location, run_on_commit, monkeypatch
):
    from storage.backends.base import StorageError
    from storage.backends.shared_fs import SharedFSBackend

    experiment, labels = spec_example(alice, fs_location, policy=(10, 10, 10))
    failed_checkpoint(labels[1])

    def unlistable(self, checkpoint_uuid):
        raise StorageError("cannot list")

    monkeypatch.setattr(SharedFSBackend, "list_directory", unlistable)
    with run_on_commit():
        sweep.sweep()
    labels[1].refresh_from_db()
    assert labels[1].state == CheckpointState.ERROR
    assert len(fs_location.listing()) == 30


# --- the embedded default -------------------------------------------------------------------


def test_reapplying_the_policy_retries_a_fixed_undeletable_checkpoint(
    alice, fs_location, run_on_commit, immutable_dir
):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    stuck = fs_location.root / str(labels[4].uuid)
    immutable_dir(stuck)
    with run_on_commit():
        first = runs.set_gc_policy(experiment, policy_of((0, 0, 1)))
    first.refresh_from_db()
    assert first.state == RunState.FAILED
    assert labels_in_state(labels, CheckpointState.ERROR) == [4]

    immutable_dir.unmark(stuck)  # the operator fixes the file system
    with run_on_commit():
        again = runs.set_gc_policy(experiment, policy_of((0, 0, 1)))  # same policy
    again.refresh_from_db()
    assert (again.reason, again.state) == (GCReason.POLICY_CHANGED, RunState.SUCCEEDED)
    assert (again.deleted, again.failed) == (1, 0)
    assert labels_in_state(labels, CheckpointState.ERROR) == []
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert_gc_invariant(fs_location)


def test_a_policy_run_completes_an_error_checkpoint_it_now_keeps(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    failed_checkpoint(labels[9])  # failed before any file went; (0, 0, 2) keeps it
    failed_checkpoint(labels[3], remove=["metadata.json"], store=fs_location)  # still deleted
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of((0, 0, 2)))
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED
    assert_completed_again_under_0_0_2(experiment, labels, fs_location)


def test_an_unexpected_error_ends_the_run_and_the_sweep_takes_over(
    alice, fs_location, run_on_commit, monkeypatch
):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    original = execute.record_batch
    calls = []

    def locked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return original(*args, **kwargs)

    monkeypatch.setattr(execute, "record_batch", locked_once)
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of((0, 0, 1)))
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.finished_at  # not RUNNING forever
    assert labels_in_state(labels, CheckpointState.DELETING)  # claimed, left over
    with run_on_commit():
        (sweep_id,) = sweep.tick()
    assert GCRun.objects.get(pk=sweep_id).state == RunState.SUCCEEDED
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert not GCRun.objects.filter(state__in=["PENDING", "RUNNING"]).exists()
    assert_gc_invariant(fs_location)


def test_the_timer_tick_is_the_sweep(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    dead = crashed_run(experiment)
    with run_on_commit():
        started = sweep.tick()
    dead.refresh_from_db()
    assert dead.state == RunState.FAILED
    assert GCRun.objects.get(pk=started[0]).state == RunState.SUCCEEDED
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]


def test_the_timer_runs_only_without_a_broker(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/14"
    assert not sweep.timer_enabled()
    settings.CELERY_BROKER_URL = None
    assert sweep.timer_enabled()
    settings.CKPTWEB_INPROCESS_SWEEP = False
    assert not sweep.timer_enabled()
