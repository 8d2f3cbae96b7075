"""Partial deletion: remove the files of a checkpoint that match a list of globs.

``delete_files(checkpoint, globs)`` validates the globs and starts a GC run of reason FILES
for the one checkpoint. The run itself is the ordinary GC run of ``experiments.gc.execute`` (the
same claim, batches, heartbeat and finish): it claims the checkpoint (``-> DELETING``),
asks the backend to delete the files matching among what storage holds and ``resources``
(``StorageBackend.delete_files``), and only then sets ``resources`` and ``size_bytes`` to
what storage holds afterwards; the state becomes PARTIALLY_DELETED, or DELETED when no file
is left. Files the storage refused stay, and the checkpoint becomes ERROR, as for any failed
deletion.

The globs and their semantics, and the deletion of matched files a FILES run does, are
``experiments.gc.globs``' (a module of its own: the run's execution imports it, and this
module starts runs).
"""

from __future__ import annotations

from django.db import transaction

from ckptweb.audit.models import Action
from ckptweb.audit.record import record
from ckptweb.jobs import RUN_TERMINAL_STATES
from ckptweb.lib.errors import Conflict
from experiments.choices import CheckpointState, GCReason
from experiments.gc.globs import (
    GlobError,
    check_globs,
    matching_files,
)
from experiments.gc.runs import AlreadyDeleted, deletion_refusal, start_gc_run
from experiments.models import Checkpoint, GCRun


class FilesNotDeletable(Conflict):
    """The checkpoint's files may not be deleted now (protected, registered, busy): a 409."""


def refusal_reason(checkpoint: Checkpoint) -> str | None:
    """Why ``checkpoint``'s files may not be deleted, or None when they may.

    ``experiments.gc.runs.deletion_refusal`` decides (state, protected, registered), as for
    a whole checkpoint; a gone state is worded for files.
    """
    refusal = deletion_refusal(checkpoint)
    if isinstance(refusal, AlreadyDeleted):
        return f"checkpoint {checkpoint.uuid} is {checkpoint.state}; its files cannot be deleted."
    return refusal.message if refusal else None


@transaction.atomic
def delete_files(checkpoint: Checkpoint, globs) -> GCRun:
    """Start a FILES run deleting the checkpoint's files matched by ``globs``.

    Conflict when the experiment is being deleted; GlobError for bad globs or globs
    matching no file; FilesNotDeletable when the checkpoint is refused (``refusal_reason``).
    """
    checkpoint.experiment.ensure_not_deleting()
    globs = check_globs(globs)
    checkpoint = (
        Checkpoint.objects.select_for_update().select_related("experiment").get(pk=checkpoint.pk)
    )
    reason = refusal_reason(checkpoint)
    if reason:
        raise FilesNotDeletable(reason)
    if not matching_files(checkpoint.resources, globs):
        raise GlobError(f"globs match no file of checkpoint {checkpoint.uuid}.")
    run = start_gc_run(checkpoint.experiment, GCReason.FILES, checkpoint=checkpoint)
    GCRun.objects.filter(pk=run.pk).update(globs=globs)
    run.globs = globs
    experiment = checkpoint.experiment
    record(
        Action.CHECKPOINT_RM,
        "checkpoint",
        checkpoint.uuid,
        experiment_id=experiment.pk,
        owner_id=experiment.owner_id,
        after={"globs": globs, "gc_run": run.pk},
    )
    return run


def resume_orphaned_deletions() -> list[int]:
    """Restart the FILES deletions whose run died: same checkpoint, same globs, a new run.

    Called by the sweep after it retired dead runs. A checkpoint a FILES run left DELETING
    must not be adopted by a SWEEP run (that would delete all of its files); it moves to a
    new FILES run with a compare-and-set on its old run, and files already gone count as
    deleted. Returns the ids of the runs started.
    """
    started = []
    orphans = Checkpoint.objects.filter(
        state=CheckpointState.DELETING,
        gc_run__reason=GCReason.FILES,
        gc_run__state__in=RUN_TERMINAL_STATES,
    ).select_related("experiment", "gc_run")
    for checkpoint in list(orphans):
        dead = checkpoint.gc_run
        with transaction.atomic():
            run = start_gc_run(checkpoint.experiment, GCReason.FILES, checkpoint=checkpoint)
            GCRun.objects.filter(pk=run.pk).update(globs=dead.globs)
            moved = Checkpoint.objects.filter(
                pk=checkpoint.pk, state=CheckpointState.DELETING, gc_run_id=dead.pk
            ).update(gc_run=run)
            if not moved:  # another sweep got there first: drop this run and its enqueue
                transaction.set_rollback(True)
                continue
        started.append(run.pk)
    return started


__all__ = [
    "FilesNotDeletable",
    "delete_files",
    "refusal_reason",
    "resume_orphaned_deletions",
]
