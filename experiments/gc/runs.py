"""Starting GC runs: the one way files are asked to go, and the refusals that guard it.

Every deletion is a GC run (``experiments.gc.execute`` does the work): a policy saved, an
experiment ended or deleted, one checkpoint deleted, files of one deleted, or the sweep.
``start_gc_run`` records the run and enqueues it once the transaction commits. The services
here refuse what must never go: anything of an experiment being deleted
(``Experiment.ensure_not_deleting``), protected checkpoints and registered ones
(``CheckpointProtected``).
"""

from __future__ import annotations

from django.db import transaction

from ckptweb.audit.models import Action
from ckptweb.audit.record import record
from ckptweb.lib.errors import Conflict
from ckptweb.lib.policy import DELETE_EVERYTHING, POLICY_FIELDS, Policy
from experiments.choices import DELETABLE_STATES, CheckpointState, ExperimentState, GCReason
from experiments.gc import execute
from experiments.models import Checkpoint, Experiment, GCRun
from experiments.registry import checkpoint_registered_refusal, experiment_registered_refusal


class CheckpointProtected(Conflict):
    """A protected (or registered) checkpoint cannot be deleted (a 409)."""


class AlreadyDeleted(Conflict):
    """The checkpoint's files are already deleted or being deleted (a 409)."""


def deletion_refusal(checkpoint: Checkpoint) -> Conflict | None:
    """Why ``checkpoint``'s files may not be deleted now, wholly or in part; None if they may.

    The one rule of ``delete_checkpoint`` and ``experiments.gc.files.delete_files``, as the
    Conflict to raise: AlreadyDeleted when its state is not one of ``DELETABLE_STATES``
    (checked first: unprotecting would not help), else CheckpointProtected when it is
    protected or registered as a model version (``experiments.registry``).
    """
    if checkpoint.state not in DELETABLE_STATES:
        return AlreadyDeleted(f"checkpoint {checkpoint.uuid} is already {checkpoint.state}.")
    if checkpoint.protected:
        message = f"checkpoint {checkpoint.uuid} is protected; unprotect it first."
        return CheckpointProtected(message)
    if refusal := checkpoint_registered_refusal(checkpoint):
        return CheckpointProtected(refusal)
    return None


# --- experiments ---------------------------------------------------------------------------


def start_gc_run(
    experiment: Experiment,
    reason: str,
    checkpoint: Checkpoint | None = None,
    policy: Policy | None = None,
    user=None,
) -> GCRun:
    """Create a PENDING GCRun and enqueue it once the surrounding transaction commits.

    ``policy`` is recorded on the run as requested; the run itself applies the experiment's
    policy as it is when the run starts (0/0/0 once the experiment is DELETING), so a run
    queued before a policy change never deletes what the new policy keeps.
    """
    if policy is None:
        policy = experiment.gc_policy
    run = GCRun.objects.create(
        experiment=experiment,
        reason=reason,
        policy=policy.as_dict(),
        checkpoint=checkpoint,
        started_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: execute.enqueue(run.pk))
    if reason in SYSTEM_REASONS:  # the other runs are named by their action's own event
        after = {"gc_run": run.pk, "reason": reason, "policy": run.policy}
        record(
            Action.GC_RUN_STARTED, "experiment", experiment.pk, **_about(experiment), after=after
        )
    return run


#: Runs no person asked for by name: an experiment that ended, the sweep.
SYSTEM_REASONS = (GCReason.EXPERIMENT_TERMINAL, GCReason.SWEEP)


def _about(experiment: Experiment) -> dict:
    """The audit fields naming ``experiment`` and who may read its events."""
    return {"experiment_id": experiment.pk, "owner_id": experiment.owner_id}


@transaction.atomic
def set_gc_policy(experiment: Experiment, policy: Policy, user=None) -> GCRun:
    """Save a new GC policy on ``experiment`` and start a GC run with it (by ``user``)."""
    experiment.ensure_not_deleting()
    before = experiment.gc_policy.as_dict()
    for field, value in policy.as_dict().items():
        setattr(experiment, field, value)
    experiment.save(update_fields=[*POLICY_FIELDS, "updated_at"])
    run = start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy, user=user)
    after = {**policy.as_dict(), "gc_run": run.pk}
    record(
        Action.GC_POLICY_SET,
        "experiment",
        experiment.pk,
        **_about(experiment),
        before=before,
        after=after,
    )
    return run


@transaction.atomic
def delete_experiment(experiment: Experiment) -> GCRun:
    """Mark the experiment DELETING and start a 0/0/0 run; the run deletes the rows after.

    Refused (CheckpointProtected) while a checkpoint with files is protected: GC never
    deletes a protected checkpoint, so the experiment could never finish deleting.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    experiment.ensure_not_deleting()
    protected = (
        experiment.checkpoints.filter(protected=True)
        .exclude(state=CheckpointState.DELETED)
        .values_list("uuid", flat=True)[:3]
    )
    if protected:
        names = ", ".join(str(uuid) for uuid in protected)
        raise CheckpointProtected(
            f"experiment {experiment.pk} has protected checkpoints ({names}); "
            "unprotect them before deleting the experiment."
        )
    # Under the experiment's row lock, which register_version also takes: no version can
    # appear between this check and the DELETING state below.
    if refusal := experiment_registered_refusal(experiment.pk):
        raise CheckpointProtected(refusal)
    before = {"name": experiment.name, "state": experiment.state}
    experiment.state = ExperimentState.DELETING
    experiment.save(update_fields=["state", "updated_at"])
    run = start_gc_run(
        experiment,
        GCReason.EXPERIMENT_DELETED,
        policy=DELETE_EVERYTHING,
    )
    after = {"state": experiment.state, "gc_run": run.pk}
    record(
        Action.EXPERIMENT_DELETE,
        "experiment",
        experiment.pk,
        **_about(experiment),
        before=before,
        after=after,
    )
    return run


@transaction.atomic
def delete_checkpoint(checkpoint: Checkpoint, user=None) -> GCRun:
    """Start a run (by ``user``) that deletes one checkpoint's files.

    Conflict when its experiment is being deleted; ``deletion_refusal``'s when its files
    may not be deleted (AlreadyDeleted, CheckpointProtected).
    """
    checkpoint = Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
    checkpoint.experiment.ensure_not_deleting()
    if refusal := deletion_refusal(checkpoint):
        raise refusal
    run = start_gc_run(
        checkpoint.experiment, GCReason.CHECKPOINT_DELETED, checkpoint=checkpoint, user=user
    )
    record(
        Action.CHECKPOINT_DELETE,
        "checkpoint",
        checkpoint.uuid,
        **_about(checkpoint.experiment),
        before={"state": checkpoint.state},
        after={"gc_run": run.pk, "size_bytes": checkpoint.size_bytes},
    )
    return run
