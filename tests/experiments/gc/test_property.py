"""Property: for any experiment and policy, GC keeps exactly what the policy retains.

What the policy retains is the independent oracle's answer (``tests.retention_oracle``,
plain Python over the generated rows), not ``experiments.gc.retention``'s, so a bug in the
ranking fails here.

Eager and in-process (SQLite or PostgreSQL), with real files on a shared_fs directory.
Some checkpoints are made undeletable; after GC and after the sweep (with the fault gone):
files on storage == files of the non-DELETED checkpoints, every retained checkpoint is
COMPLETED with all its files, a DELETED one has none.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments import services
from experiments.choices import CheckpointState, GCReason
from experiments.gc import execute, runs, sweep
from experiments.models import Checkpoint, Experiment
from storage.backends.shared_fs import SharedFSBackend
from storage.models import StorageConfig
from tests.experiments.gc.builders import assert_gc_invariant, expected_files, policy_of
from tests.factories import add_checkpoint, experiment_on
from tests.retention_oracle import reference_retained
from tests.stores import Store

pytestmark = pytest.mark.django_db

checkpoint_st = st.fixed_dictionaries(
    {
        "metric": st.sampled_from([None, None, 0.1, 0.2, 0.3, 0.5, 0.8]),
        "stuck": st.sampled_from([False, False, False, True]),
        "files": st.integers(min_value=0, max_value=3),
    }
)
experiment_st = st.fixed_dictionaries(
    {
        "trials": st.lists(st.lists(checkpoint_st, max_size=6), min_size=1, max_size=3),
        "policy": st.tuples(*(st.integers(min_value=0, max_value=3),) * 3),
        "protect": st.sets(st.integers(min_value=0, max_value=17), max_size=2),
    }
)


class StuckFiles:
    """Makes ``remove_file`` fail for files inside the chosen checkpoint directories."""

    def __init__(self):
        self.dirs: set[str] = set()
        self.original = SharedFSBackend.remove_file

    def remove_file(self, full: str) -> None:
        if any(full.startswith(directory) for directory in self.dirs):
            raise PermissionError(1, "Operation not permitted", full)
        self.original(full)


def build(owner, store, example) -> tuple[Experiment, list[Checkpoint], set[int], list[dict]]:
    """The generated experiment; returns it, its checkpoints, the ids of stuck ones and
    the oracle's rows (what was generated, not what the database ranks)."""
    experiment = experiment_on(owner, store, policy=example["policy"])
    checkpoints, stuck, rows = [], set(), []
    for generated in example["trials"]:
        trial = services.create_trial(experiment)
        for index, row in enumerate(generated):
            files = {f"part-{n}.bin": bytes([n]) * (n + 1) for n in range(row["files"])}
            steps = 100 * (index + 1)
            checkpoint = add_checkpoint(trial, store, steps, row["metric"], files)
            protected = len(checkpoints) in example["protect"]
            if protected:
                Checkpoint.objects.filter(pk=checkpoint.pk).update(protected=True)
            if row["stuck"] and files:
                stuck.add(checkpoint.pk)
            checkpoints.append(checkpoint)
            rows.append(
                {
                    "id": checkpoint.pk,
                    "trial": trial.pk,
                    "steps": steps,
                    "metric": row["metric"],
                    "state": "COMPLETED",
                    "protected": protected,
                }
            )
    return experiment, checkpoints, stuck, rows


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(example=experiment_st)
def test_gc_keeps_exactly_what_the_policy_retains(alice, monkeypatch, example):
    root = Path(tempfile.mkdtemp(prefix="gc-property-"))
    experiment = None
    stuck_files = StuckFiles()
    monkeypatch.setattr(SharedFSBackend, "remove_file", staticmethod(stuck_files.remove_file))
    try:
        store = Store.shared_fs(root)
        experiment, checkpoints, stuck, rows = build(alice, store, example)
        policy = policy_of(example["policy"])
        # The experiment's searcher metric is a loss (smaller is better, see experiment_on).
        keep = set(reference_retained(rows, True, example["policy"]))
        stuck_files.dirs = {f"{root}/{c.uuid}/" for c in checkpoints if c.pk in stuck}

        run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy)
        execute.execute_run(run.pk)
        run.refresh_from_db()
        states = dict(Checkpoint.objects.filter(experiment=experiment).values_list("pk", "state"))
        present = store.listing()
        for checkpoint in checkpoints:
            if checkpoint.pk in keep:
                assert states[checkpoint.pk] == CheckpointState.COMPLETED
                assert expected_files([checkpoint]) <= present
            elif checkpoint.pk in stuck:
                assert states[checkpoint.pk] == CheckpointState.ERROR
            else:
                assert states[checkpoint.pk] == CheckpointState.DELETED
                assert not expected_files([checkpoint]) & present
        doomed = len(checkpoints) - len(keep)
        assert (run.total, run.failed) == (doomed, len(stuck - keep))
        assert_gc_invariant(store, checkpoints)

        stuck_files.dirs = set()  # the fault is repaired; the sweep finishes the job
        sweep.sweep()
        for pending in experiment.gc_runs.filter(reason=GCReason.SWEEP):
            execute.execute_run(pending.pk)
        states = dict(Checkpoint.objects.filter(experiment=experiment).values_list("pk", "state"))
        assert {pk for pk, state in states.items() if state != CheckpointState.DELETED} == keep
        assert store.listing() == expected_files(c for c in checkpoints if c.pk in keep)
        assert_gc_invariant(store, checkpoints)
    finally:
        if experiment is not None:
            Experiment.objects.filter(pk=experiment.pk).delete()
            StorageConfig.objects.filter(pk=experiment.storage_id).delete()
        shutil.rmtree(root, ignore_errors=True)
