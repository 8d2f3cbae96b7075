"""A deletion that keeps failing is retried a bounded number of times, then shown to people.

Every sweep retried a failed deletion forever, and nobody saw it. Now the
``MAX_DELETION_FAILURES``-th failure in a row says "needs attention": the sweep starts no
more runs for it, and the experiment page and the staff storage page list it, linking to
the checkpoint. An explicit policy change still retries it, and a success resets the count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ckptweb.lib.policy import Policy
from experiments import services
from experiments.choices import CheckpointState, ExperimentState
from experiments.gc import runs
from experiments.gc.execute import execute_run
from experiments.gc.record import MAX_DELETION_FAILURES, NEEDS_ATTENTION
from experiments.gc.sweep import sweep
from experiments.models import Experiment
from storage.backends.shared_fs import SharedFSBackend
from tests import factories

pytestmark = pytest.mark.django_db

KEEP_LATEST = Policy(save_experiment_best=0, save_trial_best=0, save_trial_latest=1)


def failing_unlink(path):
    raise PermissionError(13, "Permission denied")


@pytest.fixture
def stuck(alice, default_storage, monkeypatch):
    """An ended experiment whose older checkpoint's file will not go (unlink fails)."""
    experiment = factories.make_experiment(alice, default_storage)
    trial = services.create_trial(experiment, {})
    older = factories.report_with_files(default_storage, trial, 100, {"w.bin": b"o" * 3})
    factories.report_with_files(default_storage, trial, 200, {"w.bin": b"l"})
    Experiment.objects.filter(pk=experiment.pk).update(state=ExperimentState.COMPLETED)
    monkeypatch.setattr(SharedFSBackend, "remove_file", staticmethod(failing_unlink))
    return experiment, older


def test_the_sweep_gives_up_after_the_bound_and_the_pages_say_so(
    stuck, alice_client, staff_client, monkeypatch, default_storage
):
    experiment, older = stuck
    execute_run(runs.set_gc_policy(experiment, KEEP_LATEST).pk)  # the first failure
    sweeps = 0
    while started := sweep():
        sweeps += 1
        assert sweeps < MAX_DELETION_FAILURES, "the sweep retried past its bound"
        for run_id in started:
            execute_run(run_id)
    assert sweeps == MAX_DELETION_FAILURES - 1
    older.refresh_from_db()
    assert older.state == CheckpointState.ERROR
    assert older.deletion_failures == MAX_DELETION_FAILURES
    assert older.error.startswith(NEEDS_ATTENTION) and "Permission denied" in older.error
    assert (Path(default_storage.host_path) / str(older.uuid) / "w.bin").exists()

    link = f'href="/checkpoints/{older.uuid}/"'
    page = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="needs-attention"' in page and link in page
    storage_page = staff_client.get("/storage/").content.decode()
    assert 'id="needs-attention"' in storage_page and link in storage_page
    assert "1 needs attention" in storage_page

    monkeypatch.undo()  # the admin fixed the storage and applies the policy again
    execute_run(runs.set_gc_policy(experiment, KEEP_LATEST).pk)
    older.refresh_from_db()
    assert (older.state, older.deletion_failures, older.error) == (CheckpointState.DELETED, 0, "")
    page = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="needs-attention"' not in page


def test_a_deleted_experiment_is_retried_within_the_bound_too(stuck):
    experiment, older = stuck
    execute_run(runs.delete_experiment(experiment).pk)  # 0/0/0: both fail
    sweeps = 0
    while started := sweep():
        sweeps += 1
        assert sweeps < MAX_DELETION_FAILURES, "the sweep retried past its bound"
        for run_id in started:
            execute_run(run_id)
    assert sweeps == MAX_DELETION_FAILURES - 1
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.DELETING
    assert (
        list(experiment.checkpoints.values_list("state", "deletion_failures"))
        == [(CheckpointState.ERROR, MAX_DELETION_FAILURES)] * 2
    )
