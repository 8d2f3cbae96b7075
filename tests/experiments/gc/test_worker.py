"""GC with real services: Celery workers on Redis, PostgreSQL, shared_fs and S3 (moto).

Every test runs the spec's example experiment through a real worker process and ends by
checking the invariant "files on storage == files of the non-DELETED checkpoints". The
fault tests stop S3 in the middle of a run, SIGKILL the worker in the middle of a run, and
make a checkpoint directory undeletable; the periodic sweep must then finish the job
without touching anything the policy retains.
"""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from ckptweb.jobs import RunState
from experiments import services, tasks
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import runs
from experiments.models import Checkpoint, GCRun
from tests.experiments.gc.builders import assert_gc_invariant, expected_files, labels_in_state
from tests.experiments.gc.workers import finished
from tests.servers import SECRETS, wait_for
from tests.spec import spec_example

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

KEEP_LATEST = (0, 0, 1)  # the spec keeps 10 and 5, deletes the other eight
KEPT_LATEST = [10, 5]


#: Every credential a worker test hands to a worker (tests/stores.Store.s3, tests/servers).
WORKER_SECRETS = ("gc-test-access-key", "gc-test-secret-key-do-not-leak", *SECRETS)


def assert_no_secret_in(log: str) -> None:
    """No credential appears anywhere in the workers' logs (also not URL-quoted)."""
    from urllib.parse import quote

    leaked = [s for s in WORKER_SECRETS if s in log or quote(s, safe="") in log]
    assert not leaked, f"secrets in the Celery worker log: {leaked}"


def no_active_runs() -> bool:
    return not GCRun.objects.filter(state__in=[RunState.PENDING, RunState.RUNNING]).exists()


def beat_until(condition, workers, timeout: float = 60):
    """Act as Celery beat: send ``gc_sweep`` every second until ``condition()`` holds."""
    beaten = [0.0]  # when the last sweep was sent

    def swept():
        if time.monotonic() - beaten[0] >= 1.0:
            tasks.gc_sweep.delay()
            beaten[0] = time.monotonic()
        return condition()

    wait_for(swept, timeout, "the sweep to finish the job", log=workers.log_text)


def doomed_gone(labels, kept) -> bool:
    doomed = [label for label in labels if label not in kept]
    return labels_in_state(labels, CheckpointState.DELETED) == sorted(doomed, reverse=True)


@pytest.mark.parametrize("store_name", ["fs_location", "s3_location"])
def test_the_spec_example_end_to_end(gc_worker, alice, request, store_name):
    store = request.getfixturevalue(store_name)
    experiment, labels = spec_example(alice, store, policy=(2, 1, 1))
    run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    run = wait_for(lambda: finished(run.pk), message="the GC run", log=gc_worker.log_text)
    assert run.state == RunState.SUCCEEDED, run.errors
    assert (run.total, run.deleted, run.failed) == (6, 6, 0)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [10, 8, 7, 5]
    assert store.listing() == expected_files(labels[label] for label in (10, 8, 7, 5))
    assert_gc_invariant(store)


def test_s3_stopping_mid_run_is_recorded_and_a_retry_completes(gc_worker, alice, s3_location):
    experiment, labels = spec_example(alice, s3_location, policy=KEEP_LATEST)
    retained = [labels[label] for label in KEPT_LATEST]
    run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    wait_for(
        lambda: GCRun.objects.filter(pk=run.pk, deleted__gte=2).exists(),
        message="the first batch",
        log=gc_worker.log_text,
    )
    s3_location.moto.stop()
    run = wait_for(lambda: finished(run.pk), timeout=120, message="the run", log=gc_worker.log_text)
    assert run.state == RunState.FAILED
    assert 2 <= run.deleted < 8 and run.failed == 8 - run.deleted
    assert len(run.errors) == run.failed
    assert all("secret-key-do-not-leak" not in entry["error"] for entry in run.errors)
    failed = {entry["checkpoint"] for entry in run.errors}
    assert failed == {str(c.uuid) for c in Checkpoint.objects.filter(state=CheckpointState.ERROR)}
    assert labels_in_state(labels, CheckpointState.COMPLETED) == KEPT_LATEST

    s3_location.moto.start()
    assert expected_files(retained) <= s3_location.listing()  # nothing retained was touched
    assert_gc_invariant(s3_location)
    beat_until(lambda: doomed_gone(labels, KEPT_LATEST) and no_active_runs(), gc_worker)
    sweep_run = GCRun.objects.filter(reason=GCReason.SWEEP, state=RunState.SUCCEEDED).first()
    assert sweep_run is not None and sweep_run.deleted == run.failed
    assert s3_location.listing() == expected_files(retained)
    assert_gc_invariant(s3_location)
    log = gc_worker.log_text()
    assert "TransientStorageError" in log or "Retry in" in log  # the failure was logged
    assert_no_secret_in(log)


def test_beat_on_a_running_experiment_retries_only_the_failed_deletion(
    gc_worker, alice, s3_location
):
    """Issue 25 break 1 on Celery with beat: an ACTIVE experiment (policy 0/1/1, which
    would delete six of the ten), one checkpoint deleted while S3 is down (it ends ERROR);
    once S3 is back, the sweeps delete that one and nothing else."""
    experiment, labels = spec_example(alice, s3_location, policy=(0, 1, 1))
    assert experiment.state == ExperimentState.ACTIVE
    s3_location.moto.stop()
    try:
        run = runs.delete_checkpoint(labels[3], user=alice)
        run = wait_for(
            lambda: finished(run.pk), timeout=120, message="the run", log=gc_worker.log_text
        )
    finally:
        s3_location.moto.start()
    assert run.state == RunState.FAILED
    assert labels_in_state(labels, CheckpointState.ERROR) == [3]
    beat_until(
        lambda: labels_in_state(labels, CheckpointState.DELETED) == [3] and no_active_runs(),
        gc_worker,
    )
    for _ in range(3):  # more sweeps change nothing more
        tasks.gc_sweep.delay()
    time.sleep(3)
    wait_for(no_active_runs, 60, "the last sweeps", log=gc_worker.log_text)
    others = [label for label in labels if label != 3]
    assert labels_in_state(labels, CheckpointState.COMPLETED) == sorted(others, reverse=True)
    assert s3_location.listing() == expected_files(labels[label] for label in others)
    assert_gc_invariant(s3_location)


def test_a_worker_killed_mid_run_is_finished_by_the_sweep(gc_worker, alice, fs_location):
    experiment, labels = spec_example(alice, fs_location, policy=KEEP_LATEST)
    run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    wait_for(
        lambda: GCRun.objects.filter(pk=run.pk, deleted__gte=2).exists(),
        message="the first batch",
        log=gc_worker.log_text,
    )
    gc_worker.kill()
    try:
        run.refresh_from_db()
        assert run.state == RunState.RUNNING and run.deleted < 8
        assert Checkpoint.objects.filter(state=CheckpointState.DELETING, gc_run=run).exists()
        assert_gc_invariant(fs_location)
    finally:
        gc_worker.start()
    beat_until(lambda: doomed_gone(labels, KEPT_LATEST) and no_active_runs(), gc_worker)
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.finished_at  # declared dead
    assert labels_in_state(labels, CheckpointState.COMPLETED) == KEPT_LATEST
    assert fs_location.listing() == expected_files(labels[label] for label in KEPT_LATEST)
    assert_gc_invariant(fs_location)


def test_an_undeletable_file_stays_and_its_checkpoint_is_error(
    gc_worker, alice, fs_location, immutable_dir
):
    experiment, labels = spec_example(alice, fs_location, policy=KEEP_LATEST)
    stuck = fs_location.root / str(labels[4].uuid)
    immutable_dir(stuck)
    run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    run = wait_for(lambda: finished(run.pk), message="the GC run", log=gc_worker.log_text)
    assert run.state == RunState.FAILED and (run.deleted, run.failed) == (7, 1)
    labels[4].refresh_from_db()
    assert labels[4].state == CheckpointState.ERROR and labels[4].error
    assert run.errors == [{"checkpoint": str(labels[4].uuid), "error": labels[4].error}]
    assert (str(labels[4].uuid), "state-dict.pth") in fs_location.listing()
    assert_gc_invariant(fs_location)

    immutable_dir.unmark(stuck)
    beat_until(lambda: doomed_gone(labels, KEPT_LATEST) and no_active_runs(), gc_worker)
    assert fs_location.listing() == expected_files(labels[label] for label in KEPT_LATEST)
    assert_gc_invariant(fs_location)


def test_two_runs_started_together_do_no_double_work(gc_worker, alice, fs_location):
    experiment, labels = spec_example(alice, fs_location, policy=(0, 0, 0))
    with transaction.atomic():  # both are sent on commit, to two idle workers
        first = runs.start_gc_run(experiment, GCReason.EXPERIMENT_TERMINAL)
        second = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED)
    done = [
        wait_for(lambda pk=run.pk: finished(pk), message="both runs", log=gc_worker.log_text)
        for run in (first, second)
    ]
    assert all(run.state == RunState.SUCCEEDED for run in done)
    assert max(run.started_at for run in done) < min(run.finished_at for run in done)
    assert sorted(run.total for run in done) == [0, 10]
    assert sum(run.deleted for run in done) == 10
    assert sum(run.reclaimed_bytes for run in done) == sum(c.size_bytes for c in labels.values())
    assert fs_location.listing() == set()
    assert_gc_invariant(fs_location)


def test_zz_the_worker_logs_never_show_a_secret(gc_worker, alice, s3_location):
    """Last in the module: scans everything the workers logged in this session."""
    experiment, labels = spec_example(alice, s3_location, policy=KEEP_LATEST)
    s3_location.moto.stop()  # every delete fails: errors and retries are logged
    run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    run = wait_for(lambda: finished(run.pk), timeout=120, message="the run", log=gc_worker.log_text)
    assert run.state == RunState.FAILED
    log = gc_worker.log_text()
    assert "experiments.tasks.run_gc[" in log and "Task" in log  # the log is the right one
    assert_no_secret_in(log)


def test_zzz_a_test_without_gc_worker_runs_its_tasks_eagerly(gc_workers):
    """The workers stay up for the session, but only ``gc_worker`` tests send them tasks: a
    later test's GC run must not race pytest-django's flush of the shared database."""
    from ckptweb.celery import app

    assert app.conf.task_always_eager is True
