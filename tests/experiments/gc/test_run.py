"""A GC run in eager mode (no broker, SQLite or PostgreSQL): what it deletes, marks, counts."""

from __future__ import annotations

import pytest

from ckptweb.jobs import RunState
from experiments import services, tasks
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import execute, runs, sweep
from experiments.models import Checkpoint, Experiment, GCRun
from storage.backends.base import DeleteResult, TransientStorageError
from storage.backends.shared_fs import SharedFSBackend
from tests.experiments.gc.builders import (
    assert_gc_invariant,
    assert_retained_intact,
    expected_files,
    labels_in_state,
    policy_of,
)
from tests.spec import SPEC_POLICIES, spec_example

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("numbers", "saved"), SPEC_POLICIES)
def test_it_keeps_exactly_the_spec_examples_checkpoints(
    alice, fs_location, run_on_commit, numbers, saved
):
    experiment, labels = spec_example(alice, fs_location)
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of(numbers))
    run.refresh_from_db()
    doomed = [label for label in labels if label not in saved]
    assert labels_in_state(labels, CheckpointState.COMPLETED) == saved
    assert labels_in_state(labels, CheckpointState.DELETED) == sorted(doomed, reverse=True)
    assert fs_location.listing() == expected_files(labels[label] for label in saved)
    assert run.state == RunState.SUCCEEDED
    assert (run.total, run.deleted, run.failed, run.errors) == (len(doomed), len(doomed), 0, [])
    assert run.reclaimed_bytes == sum(labels[label].size_bytes for label in doomed)
    assert run.started_at and run.finished_at and run.heartbeat
    assert run.policy == policy_of(numbers).as_dict()
    assert_gc_invariant(fs_location)


def test_reaching_a_terminal_state_collects_with_the_experiments_policy(
    alice, fs_location, run_on_commit
):
    experiment, labels = spec_example(alice, fs_location, policy=(2, 1, 1))
    with run_on_commit():
        run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    assert GCRun.objects.get(pk=run.pk).state == RunState.SUCCEEDED
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 8, 7, 5]
    assert_gc_invariant(fs_location)


def test_a_run_uses_the_policy_current_when_it_starts(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location)
    stale = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 0)))
    with run_on_commit():
        runs.set_gc_policy(experiment, policy_of((0, 0, 3)))
    execute.execute_run(stale.pk)  # queued with 0/0/0 before the change: must not use it
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 9, 8, 5, 4, 3]
    assert_gc_invariant(fs_location)


def test_a_file_that_will_not_go_leaves_its_checkpoint_error_not_deleted(
    alice, fs_location, run_on_commit, immutable_dir
):
    experiment, labels = spec_example(alice, fs_location)
    stuck = labels[3]
    immutable_dir(fs_location.root / str(stuck.uuid))
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of((0, 1, 1)))
    run.refresh_from_db()
    stuck.refresh_from_db()
    assert stuck.state == CheckpointState.ERROR
    assert "could not be deleted" in stuck.error
    # The immutable directory keeps its own entries; code/ below it could still be emptied.
    kept = {(str(stuck.uuid), "state-dict.pth"), (str(stuck.uuid), "metadata.json")}
    assert kept <= fs_location.listing()
    assert run.state == RunState.FAILED
    assert (run.deleted, run.failed) == (6, 1)
    assert run.errors == [{"checkpoint": str(stuck.uuid), "error": stuck.error}]
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 7, 5]
    assert_gc_invariant(fs_location)


def test_errors_never_show_secrets(alice, fs_location, run_on_commit, monkeypatch):
    experiment, labels = spec_example(alice, fs_location)
    storage = experiment.storage
    storage.secret_key = "hunter2-secret"
    storage.save()

    def leaky(self, uuids):
        return DeleteResult(errors={u: "denied for key hunter2-secret" for u in uuids})

    monkeypatch.setattr(SharedFSBackend, "delete_checkpoints", leaky)
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of((0, 0, 1)))
    run.refresh_from_db()
    assert run.failed == 8
    assert all("hunter2" not in entry["error"] and "***" in entry["error"] for entry in run.errors)
    assert not Checkpoint.objects.filter(error__contains="hunter2").exists()


def test_a_protected_checkpoint_is_never_claimed(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location)
    with run_on_commit():
        run = runs.delete_checkpoint(labels[2])
        Checkpoint.objects.filter(pk=labels[2].pk).update(protected=True)  # before it runs
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and run.total == 0
    assert labels_in_state(labels, CheckpointState.COMPLETED) == list(range(10, 0, -1))
    assert_gc_invariant(fs_location)


def test_deleting_one_checkpoint_deletes_only_its_files(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location)
    with run_on_commit():
        runs.delete_checkpoint(labels[10])
    assert labels_in_state(labels, CheckpointState.DELETED) == [10]
    assert_gc_invariant(fs_location)


def test_a_checkpoint_another_run_holds_is_left_to_it(alice, fs_location):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 0))
    other = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED)
    GCRun.objects.filter(pk=other.pk).update(state=RunState.RUNNING)
    Checkpoint.objects.filter(pk=labels[1].pk).update(state=CheckpointState.DELETING, gc_run=other)
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED)
    execute.execute_run(run.pk)
    run.refresh_from_db()
    assert run.total == 9 and run.deleted == 9
    labels[1].refresh_from_db()
    assert (labels[1].state, labels[1].gc_run_id) == (CheckpointState.DELETING, other.pk)
    assert expected_files([labels[1]]) == fs_location.listing()


def test_two_runs_claim_disjoint_sets(alice, fs_location, monkeypatch):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    first = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED)
    second = runs.start_gc_run(experiment, GCReason.EXPERIMENT_TERMINAL)
    for run in (first, second):
        GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
        execute.claim_checkpoints(run)
    calls = []
    original = SharedFSBackend.delete_checkpoints

    def spy(self, uuids):
        calls.extend(uuids)
        return original(self, uuids)

    monkeypatch.setattr(SharedFSBackend, "delete_checkpoints", spy)
    execute.execute_run(second.pk)
    execute.execute_run(first.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.total, second.total) == (8, 0)
    assert first.deleted + second.deleted == 8
    assert len(calls) == len(set(calls)) == 8
    assert_gc_invariant(fs_location)


def test_running_a_finished_run_again_does_nothing(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location)
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of((0, 0, 1)))
    before = GCRun.objects.filter(pk=run.pk).values().get()
    assert execute.execute_run(run.pk) is None
    tasks.run_gc.apply(args=[run.pk])
    assert GCRun.objects.filter(pk=run.pk).values().get() == before
    assert tasks.run_gc.apply(args=[987654]).successful()  # a missing run is not an error


class FlakyStorage:
    """Every delete fails and the storage is unreachable for the first ``outages`` calls."""

    def __init__(self, outages: int):
        self.outages = outages
        self.calls = 0

    def install(self, monkeypatch):
        original = SharedFSBackend.delete_checkpoints
        flaky = self

        def delete(backend, uuids):
            flaky.calls += 1
            if flaky.calls <= flaky.outages:
                raise TransientStorageError("connection refused")
            return original(backend, uuids)

        monkeypatch.setattr(SharedFSBackend, "delete_checkpoints", delete)


def test_transient_errors_are_retried_until_the_run_completes(alice, fs_location, monkeypatch):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))
    FlakyStorage(outages=2).install(monkeypatch)
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 1)))
    tasks.run_gc.apply(args=[run.pk])  # eager: retries run at once
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and run.deleted == 8
    assert_gc_invariant(fs_location)


def test_when_retries_run_out_the_failures_are_recorded(alice, fs_location, monkeypatch):
    experiment, labels = spec_example(alice, fs_location)
    FlakyStorage(outages=1000).install(monkeypatch)
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 1, 1)))
    tasks.run_gc.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.finished_at
    assert (run.deleted, run.failed) == (0, 7)
    assert {entry["error"] for entry in run.errors} == {"connection refused"}
    assert labels_in_state(labels, CheckpointState.ERROR) == [9, 8, 6, 4, 3, 2, 1]
    assert not Checkpoint.objects.filter(state=CheckpointState.DELETING).exists()
    assert_gc_invariant(fs_location)


def test_an_unreachable_storage_is_a_transient_error(alice, fs_location, monkeypatch):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 1))

    def refused(self, uuids):
        return DeleteResult(errors=dict.fromkeys(uuids, "cannot connect"))

    def down(self):
        raise TransientStorageError("storage is down")

    monkeypatch.setattr(SharedFSBackend, "delete_checkpoints", refused)
    monkeypatch.setattr(SharedFSBackend, "check_connection", down)
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 1)))
    with pytest.raises(TransientStorageError):
        execute.execute_run(run.pk, final_attempt=False)
    assert Checkpoint.objects.filter(state=CheckpointState.DELETING, gc_run=run).count() == 8
    assert GCRun.objects.get(pk=run.pk).state == RunState.RUNNING
    monkeypatch.undo()
    execute.execute_run(run.pk)  # the retry resumes what the run holds
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and (run.total, run.deleted) == (8, 8)
    assert_gc_invariant(fs_location)


def test_deleting_an_experiment_deletes_files_then_rows(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location)
    with run_on_commit():
        runs.delete_experiment(experiment)
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert not Checkpoint.objects.exists()
    assert fs_location.listing() == set()


def test_an_experiment_with_undeletable_files_stays_deleting(
    alice, fs_location, run_on_commit, immutable_dir
):
    experiment, labels = spec_example(alice, fs_location)
    stuck = fs_location.root / str(labels[4].uuid)
    immutable_dir(stuck)
    with run_on_commit():
        runs.delete_experiment(experiment)
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.DELETING
    assert labels_in_state(labels, CheckpointState.ERROR) == [4]
    assert_gc_invariant(fs_location)
    immutable_dir.unmark(stuck)
    with run_on_commit():
        sweep.sweep()
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert fs_location.listing() == set()


def test_a_policy_that_keeps_everything_changes_nothing(alice, fs_location, run_on_commit):
    experiment, labels = spec_example(alice, fs_location)
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of((10, 10, 10)))
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and run.total == 0
    assert_retained_intact(experiment, policy_of((10, 10, 10)), fs_location)
    assert len(fs_location.listing()) == 30
