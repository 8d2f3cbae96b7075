"""An ERROR checkpoint that cannot be checked stops being retried (issue 25, item 7).

Its directory became a symlink, so reading it is refused (``UnsafePath``). Every sweep
started a new run that failed on it, forever, and every later policy change of its
experiment failed too. Now the run goes on without it, the checkpoint stays ERROR with a
reason that says an admin must look, and the sweep leaves it alone.
"""

import uuid
from pathlib import Path

import pytest

from ckptweb.jobs import RunState
from experiments import services
from experiments.choices import CheckpointState, ExperimentState
from experiments.gc import runs
from experiments.gc.execute import UNCHECKABLE, execute_run
from experiments.gc.sweep import sweep
from experiments.models import Checkpoint, Experiment, GCRun
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broken(alice, default_storage):
    """An ended experiment whose one ERROR checkpoint's directory is now a symlink."""
    experiment = factories.make_experiment(alice, default_storage)
    trial = services.create_trial(experiment, {})
    kept = factories.report_with_files(default_storage, trial, 200, {"w.bin": b"k"}, 0.1)
    name = uuid.uuid4()
    root = Path(default_storage.host_path)
    (root / "elsewhere").mkdir()
    (root / str(name)).symlink_to(root / "elsewhere", target_is_directory=True)
    bad = services.report_checkpoint(trial, 100, resources={"w.bin": 1}, uuid=name)
    Checkpoint.objects.filter(pk=bad.pk).update(state=CheckpointState.ERROR, error="boom")
    Experiment.objects.filter(pk=experiment.pk).update(state=ExperimentState.COMPLETED)
    return experiment, kept, bad


def test_the_sweep_runs_once_then_leaves_it_for_an_admin(broken):
    experiment, kept, bad = broken
    first = sweep()
    assert len(first) == 1
    execute_run(first[0])
    assert GCRun.objects.get(pk=first[0]).state == RunState.SUCCEEDED
    bad.refresh_from_db()
    assert bad.state == CheckpointState.ERROR
    assert bad.error.startswith(UNCHECKABLE) and "symlink" in bad.error
    assert sweep() == []  # no run every interval, forever


def test_a_policy_change_still_works(broken):
    experiment, kept, bad = broken
    run = runs.set_gc_policy(Experiment.objects.get(pk=experiment.pk), experiment.gc_policy)
    execute_run(run.pk)
    assert GCRun.objects.get(pk=run.pk).state == RunState.SUCCEEDED
    kept.refresh_from_db()
    assert kept.state == CheckpointState.COMPLETED
