"""What the GC tests check and the states they start from.

The experiments come from ``tests.factories.experiment_on`` and ``tests.spec.spec_example``
(built through the services, with real files). A ``tests.stores.Store`` hides whether the
files live on a shared file system, in S3 or in GCS, so the same scenario and the same
invariant check (``assert_gc_invariant``) run on all three.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ckptweb.jobs import RunState
from ckptweb.lib.policy import Policy
from experiments.choices import CheckpointState, GCReason
from experiments.gc import execute, runs
from experiments.gc.retention import ranked_candidates
from experiments.models import Checkpoint, Experiment, GCRun
from tests.stores import Store


def policy_of(numbers: tuple[int, int, int]) -> Policy:
    """A Policy from (save_experiment_best, save_trial_best, save_trial_latest)."""
    best, trial_best, latest = numbers
    return Policy(save_experiment_best=best, save_trial_best=trial_best, save_trial_latest=latest)


def labels_in_state(labels: dict, state: str) -> list[int]:
    """Labels (descending) of the checkpoints now in ``state``."""
    states = dict(
        Checkpoint.objects.filter(pk__in=[c.pk for c in labels.values()]).values_list("pk", "state")
    )
    return sorted((label for label, c in labels.items() if states[c.pk] == state), reverse=True)


def expected_files(checkpoints) -> set[tuple[str, str]]:
    """(uuid, path) of every file the given checkpoints reported."""
    return {(str(c.uuid), path) for c in checkpoints for path in c.resources}


def assert_gc_invariant(store: Store, checkpoints=None) -> None:
    """Files on storage == files of the non-DELETED checkpoints.

    COMPLETED checkpoints have every file. A checkpoint whose deletion failed part-way
    (ERROR, PARTIALLY_DELETED) or is in progress (DELETING) may have lost some, never
    gained any; a DELETED one has none.
    """
    checkpoints = list(Checkpoint.objects.all() if checkpoints is None else checkpoints)
    present = store.listing()
    by_state = {}
    for checkpoint in checkpoints:
        checkpoint.refresh_from_db()
        by_state.setdefault(checkpoint.state, []).append(checkpoint)
    deleted = expected_files(by_state.get(CheckpointState.DELETED, []))
    completed = expected_files(by_state.get(CheckpointState.COMPLETED, []))
    unsure = expected_files(
        by_state.get(CheckpointState.ERROR, [])
        + by_state.get(CheckpointState.PARTIALLY_DELETED, [])
        + by_state.get(CheckpointState.DELETING, [])
    )
    assert not present & deleted, f"files of DELETED checkpoints remain: {present & deleted}"
    assert completed <= present, f"files of COMPLETED checkpoints are gone: {completed - present}"
    unknown = present - completed - unsure
    assert not unknown, f"files on storage that no live checkpoint owns: {unknown}"


def assert_retained_intact(experiment: Experiment, policy: Policy, store: Store) -> None:
    """Every checkpoint ``policy`` keeps now is COMPLETED with all its files."""
    present = store.listing()
    for ranked in ranked_candidates(experiment, policy):
        if ranked.keep:
            checkpoint = Checkpoint.objects.get(pk=ranked.id)
            assert checkpoint.state == CheckpointState.COMPLETED
            assert expected_files([checkpoint]) <= present


def crashed_run(experiment, minutes_ago: int = 60) -> GCRun:
    """A run whose worker died right after claiming its checkpoints (heartbeat stopped)."""
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED)
    GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    execute.claim_checkpoints(run)
    GCRun.objects.filter(pk=run.pk).update(
        heartbeat=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return run


def failed_checkpoint(checkpoint, run=None, remove=(), store=None):
    """Put ``checkpoint`` in ERROR as a failed deletion leaves it, minus ``remove`` files."""
    for path in remove:
        (store.root / str(checkpoint.uuid) / path).unlink()
    Checkpoint.objects.filter(pk=checkpoint.pk).update(
        state=CheckpointState.ERROR, error="permission denied", gc_run=run
    )
