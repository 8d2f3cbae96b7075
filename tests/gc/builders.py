"""Test data for GC tests: experiments built through the services, with real files.

A ``tests.stores.Store`` hides whether the files live on a shared file system, in S3 or in
GCS, so the same scenario and the same invariant check run on all three.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ckptweb.jobs import RunState
from ckptweb.lib.policy import Policy
from experiments import services
from experiments.choices import CheckpointState, GCReason
from experiments.gc import execute, runs
from experiments.gc.retention import ranked_candidates
from experiments.models import Checkpoint, Experiment, GCRun
from tests.spec import (
    SPEC_POLICIES,  # noqa: F401 - used by the GC tests
    SPEC_TABLE,  # (trial, steps, metric) of checkpoints 1..10
)
from tests.stores import Store

# Every checkpoint gets these files (relative path -> content).
CHECKPOINT_FILES = {
    "state-dict.pth": b"weights" * 10,
    "metadata.json": b'{"framework": "pytorch"}',
    "code/model_def.py": b"import torch\n",
}


def policy_of(numbers: tuple[int, int, int]) -> Policy:
    """A Policy from (save_experiment_best, save_trial_best, save_trial_latest)."""
    best, trial_best, latest = numbers
    return Policy(save_experiment_best=best, save_trial_best=trial_best, save_trial_latest=latest)


def experiment_on(owner, store: Store, policy=(0, 1, 1), name="gc-test") -> Experiment:
    """An experiment on ``store``'s storage, created through the services, with a policy."""
    best, trial_best, latest = policy
    config = {
        "name": name,
        "searcher": {"metric": "loss", "smaller_is_better": True},
        "checkpoint_storage": {
            **store.storage_section,
            "save_experiment_best": best,
            "save_trial_best": trial_best,
            "save_trial_latest": latest,
        },
    }
    return services.create_experiment(owner, config)


def add_checkpoint(trial, store: Store, steps: int, metric: float | None, files=None):
    """Report a validation (when ``metric`` is set) and a checkpoint whose files exist."""
    files = CHECKPOINT_FILES if files is None else files
    if metric is not None:
        services.report_validation(trial, steps, {"loss": metric})
    checkpoint = services.report_checkpoint(
        trial, steps, resources={path: len(data) for path, data in files.items()}
    )
    for path, data in files.items():
        store.put(str(checkpoint.uuid), path, data)
    return checkpoint


def spec_example(owner, store: Store, policy=(0, 1, 1)) -> tuple[Experiment, dict]:
    """The spec's example experiment; returns it and ``{label 1..10: Checkpoint}``."""
    experiment = experiment_on(owner, store, policy)
    trials = {1: services.create_trial(experiment), 2: services.create_trial(experiment)}
    labels = {}
    for label, (trial, steps, metric) in enumerate(SPEC_TABLE, start=1):
        labels[label] = add_checkpoint(trials[trial], store, steps, metric)
    return experiment, labels


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
