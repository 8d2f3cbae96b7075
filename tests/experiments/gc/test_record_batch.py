"""``record.record_batch``: a constant number of statements per batch, compare-and-set kept."""

from __future__ import annotations

import pytest

from ckptweb.jobs import RunState
from experiments.choices import CheckpointState, GCReason
from experiments.gc import record, runs
from experiments.models import Checkpoint, GCRun
from tests.factories import bulk_checkpoints

pytestmark = pytest.mark.django_db

BATCH = 100


def claimed_batch(trial, size: int = BATCH):
    """A RUNNING run holding ``size`` DELETING checkpoints of 10 + i bytes each."""
    rows = [(i, float(i), CheckpointState.COMPLETED, False, 10 + i) for i in range(size)]
    bulk_checkpoints(trial, rows)
    run = runs.start_gc_run(trial.experiment, GCReason.POLICY_CHANGED)
    GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    Checkpoint.objects.filter(trial=trial).update(state=CheckpointState.DELETING, gc_run=run)
    batch = list(Checkpoint.objects.filter(gc_run=run).order_by("id"))
    return run, batch


@pytest.mark.parametrize("distinct_errors", [False, True])
def test_a_batch_of_100_is_recorded_in_a_constant_number_of_statements(
    trial, django_assert_num_queries, distinct_errors
):
    run, batch = claimed_batch(trial)
    failing = batch[:10]
    errors = {str(c.uuid): f"disk full {c.pk}" if distinct_errors else "disk full" for c in failing}
    # savepoint, lock the run, read the held rows, UPDATE deleted, UPDATE errors, save run,
    # the experiment summary's UPDATE, release: 8 (SQLite and PostgreSQL alike), not one
    # UPDATE per checkpoint.
    with django_assert_num_queries(8):
        outcome = record.record_batch(run.pk, batch, errors)
    assert (outcome.deleted, outcome.failed) == (90, 10)
    assert outcome.reclaimed_bytes == sum(c.size_bytes for c in batch[10:])
    assert outcome.experiment_id == trial.experiment_id
    run.refresh_from_db()
    assert (run.deleted, run.failed, run.reclaimed_bytes) == (90, 10, outcome.reclaimed_bytes)
    assert sorted(e["checkpoint"] for e in run.errors) == sorted(errors)
    for checkpoint in failing:
        checkpoint.refresh_from_db()
        assert checkpoint.state == CheckpointState.ERROR
        assert checkpoint.error == errors[str(checkpoint.uuid)]
    deleted = Checkpoint.objects.filter(trial=trial, state=CheckpointState.DELETED)
    assert deleted.count() == 90 and not deleted.exclude(error="").exists()


def test_checkpoints_the_run_no_longer_holds_are_neither_changed_nor_counted(trial):
    run, batch = claimed_batch(trial, size=6)
    other = runs.start_gc_run(trial.experiment, GCReason.SWEEP)
    adopted, protected_again, errored = batch[0], batch[1], batch[2]
    # Another run adopted one; one went back to COMPLETED; one the run no longer holds fails.
    Checkpoint.objects.filter(pk=adopted.pk).update(gc_run=other)
    Checkpoint.objects.filter(pk=protected_again.pk).update(state=CheckpointState.COMPLETED)
    Checkpoint.objects.filter(pk=errored.pk).update(gc_run=None)
    outcome = record.record_batch(run.pk, batch, {str(errored.uuid): "boom"})
    assert (outcome.deleted, outcome.failed) == (3, 0)
    assert outcome.reclaimed_bytes == sum(c.size_bytes for c in batch[3:])
    run.refresh_from_db()
    assert (run.deleted, run.failed, run.errors) == (3, 0, [])
    states = dict(Checkpoint.objects.filter(trial=trial).values_list("pk", "state"))
    assert states[adopted.pk] == states[errored.pk] == CheckpointState.DELETING
    assert states[protected_again.pk] == CheckpointState.COMPLETED
    assert [states[c.pk] for c in batch[3:]] == [CheckpointState.DELETED] * 3


def test_an_empty_batch_only_beats(trial):
    run, _ = claimed_batch(trial, size=1)
    outcome = record.record_batch(run.pk, [], {})
    assert (outcome.deleted, outcome.failed, outcome.reclaimed_bytes) == (0, 0, 0)
    run.refresh_from_db()
    assert run.deleted == 0 and run.heartbeat is not None
