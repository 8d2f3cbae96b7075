"""The embedded default (no broker, no beat): re-applying a policy retries, runs resume.

``test_attacks/test_gc_resume.py`` kills a real server mid-run; these are the same rules
checked in-process: a failed deletion is retried by the next run of a policy that still
deletes it, an unexpected error ends a run at once, and the sweep timer's ``tick`` resumes
a run whose heartbeat stopped.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError

from experiments import gc, services, sweeper
from experiments.choices import CheckpointState, GCReason, GCRunState
from experiments.models import GCRun
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


def test_reapplying_the_policy_retries_a_fixed_undeletable_checkpoint(
    alice, fs_store, run_on_commit, immutable_dir
):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    stuck = fs_store.root / str(labels[4].uuid)
    immutable_dir(stuck)
    with run_on_commit():
        first = services.set_gc_policy(experiment, policy_of((0, 0, 1)))
    first.refresh_from_db()
    assert first.state == GCRunState.FAILED
    assert labels_in_state(labels, CheckpointState.ERROR) == [4]

    immutable_dir.unmark(stuck)  # the operator fixes the file system
    with run_on_commit():
        again = services.set_gc_policy(experiment, policy_of((0, 0, 1)))  # same policy
    again.refresh_from_db()
    assert (again.reason, again.state) == (GCReason.POLICY_CHANGED, GCRunState.SUCCEEDED)
    assert (again.deleted, again.failed) == (1, 0)
    assert labels_in_state(labels, CheckpointState.ERROR) == []
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert_gc_invariant(fs_store)


def test_a_policy_run_completes_an_error_checkpoint_it_now_keeps(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    failed_checkpoint(labels[9])  # failed before any file went; (0, 0, 2) keeps it
    failed_checkpoint(labels[3], remove=["metadata.json"], store=fs_store)  # still deleted
    with run_on_commit():
        run = services.set_gc_policy(experiment, policy_of((0, 0, 2)))
    run.refresh_from_db()
    assert run.state == GCRunState.SUCCEEDED
    labels[9].refresh_from_db()
    assert (labels[9].state, labels[9].error) == (CheckpointState.COMPLETED, "")
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 9, 5, 4]
    experiment.refresh_from_db()
    assert_retained_intact(experiment, policy_of((0, 0, 2)), fs_store)
    assert_gc_invariant(fs_store)


def test_an_unexpected_error_ends_the_run_and_the_sweep_takes_over(
    alice, fs_store, run_on_commit, monkeypatch
):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    original = gc.record_batch
    calls = []

    def locked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return original(*args, **kwargs)

    monkeypatch.setattr(gc, "record_batch", locked_once)
    with run_on_commit():
        run = services.set_gc_policy(experiment, policy_of((0, 0, 1)))
    run.refresh_from_db()
    assert run.state == GCRunState.FAILED and run.finished_at  # not RUNNING forever
    assert labels_in_state(labels, CheckpointState.DELETING)  # claimed, left over
    with run_on_commit():
        (sweep_id,) = sweeper.tick()
    assert GCRun.objects.get(pk=sweep_id).state == GCRunState.SUCCEEDED
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]
    assert not GCRun.objects.filter(state__in=["PENDING", "RUNNING"]).exists()
    assert_gc_invariant(fs_store)


def test_the_timer_tick_is_the_sweep(alice, fs_store, run_on_commit):
    experiment, labels = spec_example(alice, fs_store, policy=(0, 0, 1))
    dead = crashed_run(experiment)
    with run_on_commit():
        started = sweeper.tick()
    dead.refresh_from_db()
    assert dead.state == GCRunState.FAILED
    assert GCRun.objects.get(pk=started[0]).state == GCRunState.SUCCEEDED
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 5]


def test_the_timer_runs_only_without_a_broker(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/14"
    assert not sweeper.enabled()
    settings.CELERY_BROKER_URL = None
    assert sweeper.enabled()
    settings.CKPTWEB_INPROCESS_SWEEP = False
    assert not sweeper.enabled()
