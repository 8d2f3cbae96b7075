"""A symlink leading out of a checkpoint is never taken for a deleted file (issue 25, item 4).

The attack: a file inside a shared_fs checkpoint is a symlink to a file outside it. Its
deletion fails (ERROR); then the policy is applied again. Reconciliation could not see the
link (listings skip what leads out), took it for deleted and made the checkpoint
PARTIALLY_DELETED although nothing was deleted. Now a listing with such an entry cannot
check the checkpoint: it stays ERROR with an error that says an admin must look, the sweep
leaves it alone, and nothing is ever deleted through the link.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ckptweb.lib.policy import Policy
from experiments import services
from experiments.choices import CheckpointState
from experiments.gc import runs
from experiments.gc.execute import UNCHECKABLE, execute_run
from experiments.gc.sweep import sweep
from experiments.models import Checkpoint
from storage.backends.shared_fs import SharedFSBackend
from tests import factories

pytestmark = pytest.mark.django_db


def policy(latest: int) -> Policy:
    return Policy(save_experiment_best=0, save_trial_best=0, save_trial_latest=latest)


@pytest.fixture
def linked_out(alice, default_storage, tmp_path):
    """alice's experiment: an older checkpoint whose ``link.bin`` leads out of it, and the
    latest one; the older one reported the link as one of its files."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    experiment = factories.make_experiment(alice, default_storage)
    trial = services.create_trial(experiment, {})
    older = factories.report_with_files(default_storage, trial, 100, {"w.bin": b"w" * 4})
    factories.report_with_files(default_storage, trial, 200, {"w.bin": b"l"})
    directory = Path(default_storage.host_path) / str(older.uuid)
    (directory / "link.bin").symlink_to(outside)
    Checkpoint.objects.filter(pk=older.pk).update(
        resources={"w.bin": 4, "link.bin": 8}, size_bytes=12
    )
    return experiment, older, directory, outside


def assert_needs_attention(older, directory, outside) -> None:
    older.refresh_from_db()
    assert older.state == CheckpointState.ERROR  # not PARTIALLY_DELETED: nothing went
    assert older.error.startswith(UNCHECKABLE) and "symlink" in older.error
    assert older.resources == {"w.bin": 4, "link.bin": 8}
    assert outside.read_bytes() == b"precious"
    assert (directory / "w.bin").exists() and (directory / "link.bin").is_symlink()


def test_an_error_checkpoint_with_a_link_out_is_not_taken_for_partly_deleted(linked_out):
    experiment, older, directory, outside = linked_out
    Checkpoint.objects.filter(pk=older.pk).update(
        state=CheckpointState.ERROR, error="permission denied"
    )
    execute_run(runs.set_gc_policy(experiment, policy(latest=2)).pk)  # keeps both
    assert_needs_attention(older, directory, outside)
    assert sweep() == []  # left for an admin


def test_a_failed_deletion_with_a_link_out_needs_attention(linked_out, monkeypatch):
    experiment, older, directory, outside = linked_out

    def failing_unlink(path):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patched:
        patched.setattr(SharedFSBackend, "remove_file", staticmethod(failing_unlink))
        execute_run(runs.set_gc_policy(experiment, policy(latest=1)).pk)
    assert_needs_attention(older, directory, outside)
    execute_run(runs.set_gc_policy(experiment, policy(latest=1)).pk)  # applied again
    assert_needs_attention(older, directory, outside)
    assert sweep() == []
