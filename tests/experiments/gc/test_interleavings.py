"""Property: any interleaving of what users, trainers, storage and the sweep do keeps its promise.

Issue 25's acceptance: random interleavings of reports, policy changes, protect and
unprotect, registration, deletion of whole checkpoints and of files, storage faults and
the sweep; after every step, nothing kept was deleted and the rows match storage.

Driven through the services (the one writer of each state) with every GC run executed as
it is started, on real files in a shared_fs directory. A fault makes the storage refuse to
delete the files of chosen checkpoints (as a read-only mount or a permission error would).

Checked after every step:

* every protected or registered checkpoint, and everything the last applied policy
  retained (when it was applied) unless deleted by name since (wholly or in
  part), is live (not DELETING or
  DELETED) with all its files;
* the rows match storage: a COMPLETED or PARTIALLY_DELETED checkpoint has exactly its
  ``resources`` on storage with ``size_bytes`` their sum, a DELETED one has nothing, an
  ERROR one has lost files only, and no file belongs to no checkpoint.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid as uuid_lib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ckptweb.jobs import RunState
from ckptweb.lib.errors import Conflict, Gone
from ckptweb.lib.limits import InvalidInput
from experiments import registry, services
from experiments.choices import CheckpointState
from experiments.gc import execute, files, retention, runs, sweep
from experiments.models import Checkpoint, Experiment, GCRun, Model, ModelVersion
from storage.backends.shared_fs import SharedFSBackend
from storage.models import StorageConfig
from tests.experiments.gc.builders import policy_of
from tests.factories import experiment_on
from tests.stores import Store

pytestmark = pytest.mark.django_db

REFUSED = (Conflict, Gone, InvalidInput)
LIVE = (CheckpointState.COMPLETED, CheckpointState.PARTIALLY_DELETED, CheckpointState.ERROR)
FILE_NAMES = ("weights.bin", "optimizer.bin", "config.json")

policies = st.tuples(*(st.integers(min_value=0, max_value=2),) * 3)
picks = st.integers(min_value=0, max_value=10_000)  # an index into the checkpoints so far


class Faults:
    """Makes ``remove_file`` fail inside the chosen checkpoint directories."""

    def __init__(self):
        self.dirs: set[str] = set()
        self.original = SharedFSBackend.remove_file

    def remove_file(self, full: str) -> None:
        if any(full.startswith(directory) for directory in self.dirs):
            raise PermissionError(1, "Operation not permitted", full)
        self.original(full)


class Interleavings(RuleBasedStateMachine):
    owner = None  # set by the test: alice
    faults: Faults

    @initialize(
        reports=st.lists(
            st.tuples(st.integers(0, 1), st.none() | st.floats(0.01, 1.0), st.integers(1, 3)),
            min_size=3,
            max_size=8,
        ),
        protect=st.sets(st.integers(0, 7), max_size=2),
    )
    def setup(self, reports, protect):
        self.root = Path(tempfile.mkdtemp(prefix="gc-interleave-"))
        self.store = Store.shared_fs(self.root)
        self.experiment = experiment_on(self.owner, self.store, policy=(0, 1, 1))
        self.trials = [services.create_trial(self.experiment) for _ in range(2)]
        self.model = registry.create_model(self.owner, f"m-{self.experiment.pk}")
        self.steps = 0
        self.retained: set[int] = set()  # what the last applied policy kept
        for trial, metric, n in reports:
            self.report(trial, metric, n)
        for index, checkpoint in enumerate(self.checkpoints()):
            if index in protect:
                services.update_checkpoint(checkpoint, protected=True)

    def teardown(self):
        self.faults.dirs = set()
        experiment = getattr(self, "experiment", None)
        if experiment is not None:
            Model.objects.filter(owner=self.owner).delete()
            Experiment.objects.filter(pk=experiment.pk).delete()
            StorageConfig.objects.filter(pk=experiment.storage_id).delete()
            shutil.rmtree(self.root, ignore_errors=True)

    # --- helpers --------------------------------------------------------------------------

    def checkpoints(self) -> list[Checkpoint]:
        return list(Checkpoint.objects.filter(experiment=self.experiment).order_by("id"))

    def pick(self, index: int) -> Checkpoint | None:
        rows = self.checkpoints()
        return rows[index % len(rows)] if rows else None

    def run_pending(self) -> None:
        """Execute every run started (the eager worker of a deployment without a broker)."""
        for pk in GCRun.objects.filter(state=RunState.PENDING).values_list("pk", flat=True):
            execute.execute_run(pk)

    # --- what trainers and users do ------------------------------------------------------

    @rule(trial=st.integers(0, 1), metric=st.none() | st.floats(0.01, 1.0), n=st.integers(1, 3))
    def report(self, trial, metric, n):
        self.steps += 100
        trial = self.trials[trial]
        found = {name: bytes([len(name)]) * (len(name) + self.steps % 7) for name in FILE_NAMES[:n]}
        checkpoint_uuid = str(uuid_lib.uuid4())
        self.store.put_files(checkpoint_uuid, found)
        if metric is not None:
            services.report_validation(trial, self.steps, {"loss": metric})
        services.report_checkpoint(
            trial,
            self.steps,
            uuid=checkpoint_uuid,
            resources={name: len(data) for name, data in found.items()},
        )

    @rule(policy=policies)
    def change_policy(self, policy):
        self.experiment.refresh_from_db()
        try:
            runs.set_gc_policy(self.experiment, policy_of(policy))
        except REFUSED:
            return
        self.experiment.refresh_from_db()
        kept = {
            c.id for c in retention.ranked_candidates(self.experiment, policy_of(policy)) if c.keep
        }
        self.run_pending()
        self.retained = kept

    @rule(index=picks, protected=st.booleans())
    def protect(self, index, protected):
        checkpoint = self.pick(index)
        if checkpoint is None:
            return
        try:
            services.update_checkpoint(checkpoint, protected=protected)
        except REFUSED:
            checkpoint.refresh_from_db()
            assert checkpoint.protected is False or not protected

    @rule(index=picks)
    def register(self, index):
        checkpoint = self.pick(index)
        if checkpoint is None:
            return
        with contextlib.suppress(REFUSED):
            registry.register_version(self.model, checkpoint, self.owner)

    @rule(index=picks)
    def delete_checkpoint(self, index):
        checkpoint = self.pick(index)
        if checkpoint is None:
            return
        try:
            runs.delete_checkpoint(checkpoint, user=self.owner)
        except REFUSED:
            return
        self.retained.discard(checkpoint.pk)  # asked for by name: the policy's keep yields
        self.run_pending()

    @rule(index=picks, glob=st.sampled_from(["*.bin", "config.json", "**", "weights.*"]))
    def delete_files(self, index, glob):
        checkpoint = self.pick(index)
        if checkpoint is None:
            return
        try:
            files.delete_files(checkpoint, [glob])
        except REFUSED:
            return
        self.retained.discard(checkpoint.pk)  # its files were asked for by name
        self.run_pending()

    # --- what storage and the sweep do ---------------------------------------------------

    @rule(index=picks)
    def break_storage(self, index):
        checkpoint = self.pick(index)
        if checkpoint is not None:
            self.faults.dirs.add(f"{self.root}/{checkpoint.uuid}/")

    @precondition(lambda self: self.faults.dirs)
    @rule()
    def repair_storage(self):
        self.faults.dirs = set()

    @rule()
    def sweep(self):
        sweep.sweep()
        self.run_pending()

    # --- the promise ---------------------------------------------------------------------

    @invariant()
    def nothing_kept_was_deleted(self):
        if not hasattr(self, "experiment"):
            return
        present = self.store.listing()
        pinned = set(
            ModelVersion.objects.filter(checkpoint__experiment=self.experiment).values_list(
                "checkpoint_id", flat=True
            )
        )
        for checkpoint in self.checkpoints():
            kept = checkpoint.protected or checkpoint.pk in pinned or checkpoint.pk in self.retained
            if not kept:
                continue
            assert checkpoint.state in LIVE, (checkpoint.pk, checkpoint.state)
            mine = {(str(checkpoint.uuid), path) for path in checkpoint.resources}
            assert mine <= present, f"kept checkpoint {checkpoint.pk} lost {mine - present}"

    @invariant()
    def rows_match_storage(self):
        if not hasattr(self, "experiment"):
            return
        present = self.store.listing()
        owned = set()
        for checkpoint in self.checkpoints():
            on_storage = {path for name, path in present if name == str(checkpoint.uuid)}
            owned |= {(str(checkpoint.uuid), path) for path in on_storage}
            listed = set(checkpoint.resources)
            where = (checkpoint.pk, checkpoint.state, sorted(listed), sorted(on_storage))
            if checkpoint.state in (CheckpointState.COMPLETED, CheckpointState.PARTIALLY_DELETED):
                assert on_storage == listed, where
                assert checkpoint.size_bytes == sum(checkpoint.resources.values()), where
            elif checkpoint.state == CheckpointState.DELETED:
                assert not on_storage, where
            else:  # ERROR: a failed deletion may have removed some, never added any
                assert on_storage <= listed, where
        assert present == owned, f"files no checkpoint owns: {present - owned}"


def test_interleavings_never_lose_what_is_kept(alice, monkeypatch):
    faults = Faults()
    monkeypatch.setattr(SharedFSBackend, "remove_file", staticmethod(faults.remove_file))
    Interleavings.owner = alice
    Interleavings.faults = faults
    run_state_machine_as_test(
        Interleavings,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
