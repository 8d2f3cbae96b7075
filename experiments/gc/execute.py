"""Garbage-collection runs: delete the files of the checkpoints a policy does not keep.

A run (``execute_run``) works in three steps, each safe to repeat:

1. **Claim.** With the experiment row locked, recompute the deletion set with
   ``retention.ranked_candidates`` (never a stale list) and claim it with one
   compare-and-set UPDATE: ``COMPLETED | PARTIALLY_DELETED | ERROR -> DELETING``,
   ``gc_run = run``, only where the checkpoint is not pinned (``retention.pinned``: not
   ``protected`` and not registered as a model version). A checkpoint another run holds
   (already DELETING), or that became protected or registered since a preview, is skipped,
   so two runs never do the same work and a pinned checkpoint is never deleted.
   ``registry.register_version`` takes the same experiment lock, so a registration is
   either seen here or refused because the checkpoint is already DELETING.
2. **Delete** the claimed checkpoints' files through the storage backend in batches. A
   checkpoint becomes DELETED when the backend reports no error for it, i.e. its files
   are confirmed gone. An error is not trusted alone: the checkpoints it names are listed
   again (``listed_after_failure``) and the listing decides, so one with nothing left is
   DELETED (a lost DeleteObjects answer) and the others become ERROR with the
   (secret-free) error text, also listed in ``run.errors``, and ``resources``/``size_bytes``
   of what is really left (``experiments.gc.record``). Every finishing UPDATE is again a
   compare-and-set on ``state=DELETING, gc_run=run``, so a run that lost its checkpoints
   to a newer run (after being declared stale) changes nothing and counts nothing.
   A run of reason FILES (partial deletion, see ``experiments.gc.files``) holds
   one checkpoint and asks the backend to delete only the files its ``globs`` match among
   what storage holds and ``resources``; ``resources``/``size_bytes`` become what storage
   holds afterwards in the same finishing UPDATE, which sets PARTIALLY_DELETED (DELETED
   when nothing is left). When some files would not go, the error is recorded as for any
   checkpoint, and the state is PARTIALLY_DELETED if any file went, else ERROR.
3. **Finish**: SUCCEEDED when nothing failed, else FAILED; an experiment being deleted loses
   its rows once none of its checkpoints has files left.

Transient storage failures propagate to the Celery task, which retries the same run with
backoff; on the last attempt they are recorded per checkpoint instead.

Every run but a single-checkpoint deletion first **reconciles** the experiment's ERROR
checkpoints with what storage lists (``listed_state``): COMPLETED when every file it
reported is still there, DELETED when none is, PARTIALLY_DELETED when some are gone.
That makes it a candidate again, so the usual ranking with the *current*
policy decides: it is retried only if the policy still deletes it, and a checkpoint the
policy now retains keeps its files. An ERROR checkpoint whose storage cannot be listed
stays ERROR for the next sweep; one whose files cannot be checked (``UNCHECKABLE``), or
whose deletion failed ``record.MAX_DELETION_FAILURES`` times in a row, needs attention: a
SWEEP run leaves it alone. A SWEEP run (``experiments.gc.sweep``) first **adopts** the
DELETING checkpoints whose run is gone and finishes deleting them.

The run's lifecycle — claim, heartbeat, finish, and retirement when its heartbeat stops —
is ``ckptweb.jobs``', shared with storage scans and orphan deletions; an unexpected error
ends the run FAILED at once, and what it had claimed is adopted by the next sweep. The
``run_gc`` task lives here, beside ``enqueue``, so that starting a run
(``experiments.services``) and the sweep reach it without an import cycle.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F

from ckptweb import jobs
from ckptweb.jobs import RUN_TERMINAL_STATES, RunState
from ckptweb.lib.db import chunked
from ckptweb.lib.paths import UnsafePath
from ckptweb.lib.policy import DELETE_EVERYTHING, Policy
from experiments import summary
from experiments.choices import GC_CANDIDATE_STATES, CheckpointState, ExperimentState, GCReason
from experiments.gc import kernel
from experiments.gc.globs import delete_matching_files
from experiments.gc.record import NEEDS_ATTENTION, Listed, record_batch, stored_files
from experiments.gc.retention import pinned, ranked_candidates
from experiments.models import Checkpoint, Experiment, GCRun
from storage.backends import get_backend
from storage.backends.base import StorageError, TransientStorageError

logger = logging.getLogger(__name__)

#: Runs that delete (files of) the one checkpoint named on the run, whatever the policy.
SINGLE_CHECKPOINT_REASONS = (GCReason.CHECKPOINT_DELETED, GCReason.FILES)


# --- the run ---------------------------------------------------------------------------------


def execute_run(run_id: int, final_attempt: bool = True) -> GCRun | None:
    """Execute (or resume) GC run ``run_id``; returns it, or None when there is nothing to do.

    Safe to call twice, concurrently or after a crash: claimed checkpoints are resumed and
    every state change is a compare-and-set. Raises TransientStorageError for the caller to
    retry, unless ``final_attempt``, when the failure is recorded on the checkpoints.
    """

    def work(run: GCRun) -> str:
        backend = get_backend(run.experiment.storage)
        if run.reason == GCReason.SWEEP:
            adopt_orphans(run)
        if run.reason != GCReason.CHECKPOINT_DELETED:
            # Re-applying a policy retries the ERROR checkpoints it deletes (no sweep needed).
            reconcile_errors(run, backend)
        claim_checkpoints(run)
        delete_claimed(run, backend, final_attempt)
        run.refresh_from_db(fields=["failed"])
        return RunState.FAILED if run.failed else RunState.SUCCEEDED

    run = jobs.execute(
        GCRun.objects.select_related("experiment__storage"), run_id, work, final_attempt
    )
    if run is not None and run.is_finished:
        delete_experiment_rows(run.experiment_id)
    return GCRun.objects.filter(pk=run_id).first() if run is not None else None


def effective_policy(experiment: Experiment) -> Policy:
    """The policy a run applies now: 0/0/0 when deleting the experiment, else its current one.

    The experiment's policy is read when the run starts, so a run queued before a policy
    change never deletes what the new policy keeps.
    """
    return experiment.applied_policy


def deletion_set(run: GCRun, experiment: Experiment, policy: Policy) -> list[int]:
    """Ids of the checkpoints ``run`` should delete, computed now from the database."""
    if run.reason in SINGLE_CHECKPOINT_REASONS:
        return [run.checkpoint_id] if run.checkpoint_id else []
    ids = [c.id for c in ranked_candidates(experiment, policy) if not c.keep]
    if run.reason == GCReason.SWEEP and experiment.state in RUNNING_STATES:
        # An automatic run never widens: on a running experiment it retries only the
        # deletions that were asked for (the ERROR checkpoints it reconciled, marked with
        # gc_run = run). There the policy reaches the rest only through an explicit change;
        # an ended experiment asked for its policy when it ended, a deleted one for 0/0/0.
        asked = set(
            Checkpoint.objects.filter(
                experiment=experiment, gc_run=run, state__in=GC_CANDIDATE_STATES
            ).values_list("id", flat=True)
        )
        ids = [i for i in ids if i in asked]
    if policy == DELETE_EVERYTHING:
        # No ranking can keep anything, so ERROR checkpoints are retried directly (by the
        # sweep only those that do not need attention: its retries are bounded).
        failed = Checkpoint.objects.filter(experiment=experiment, state=CheckpointState.ERROR)
        if run.reason == GCReason.SWEEP:
            failed = failed.exclude(error__startswith=NEEDS_ATTENTION)
        ids += failed.values_list("id", flat=True)
    return ids


#: The error of an ERROR checkpoint whose files cannot be checked: the sweep leaves it alone.
UNCHECKABLE = f"{NEEDS_ATTENTION}its files cannot be checked: "

#: Experiments still training: no automatic run applies their policy (``deletion_set``).
RUNNING_STATES = (ExperimentState.ACTIVE, ExperimentState.PAUSED)

#: A claim of at least this many checkpoints refreshes the planner's statistics of the
#: columns the batches filter on (PostgreSQL ``ANALYZE``, ~0.1 s at 1M rows): the claim turns
#: a run's rows DELETING at once, autovacuum waits for 10% of the table to change, and with
#: the old statistics the planner expects one row per run, so every batch's three queries
#: scanned all the rows the run still held (100k checkpoints went at a third of 10k's rate).
ANALYZE_AFTER_CLAIMING = 5_000


def refresh_statistics(claimed: int) -> None:
    """``ANALYZE`` the checkpoints' ``gc_run_id`` and ``state`` after a large claim."""
    connection = connections[Checkpoint.objects.db]
    if claimed < ANALYZE_AFTER_CLAIMING or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Checkpoint._meta.db_table}" ("gc_run_id", "state")')


def claim_checkpoints(run: GCRun) -> int:
    """Recompute the deletion set and claim it for ``run``; returns how many were claimed.

    The experiment row is locked meanwhile, so a policy saved concurrently is either seen
    here or saved after the claim (and its own run then sees the claim). The lock is FOR NO
    KEY UPDATE, which still lets other transactions insert rows referencing the experiment.
    """
    with transaction.atomic():
        experiment = (
            Experiment.objects.select_for_update(no_key=True)
            .select_related("storage")
            .get(pk=run.experiment_id)
        )
        jobs.beat(GCRun, run.pk)
        if run.reason in SINGLE_CHECKPOINT_REASONS:
            policy = run.gc_policy  # not used: the run deletes the one checkpoint
        else:
            policy = effective_policy(experiment)
        ids = deletion_set(run, experiment, policy)
        claimed = 0
        claim = {"state": CheckpointState.DELETING, "gc_run": run, "error": ""}
        for part in chunked(ids):  # a deletion set can outgrow one IN list
            claimable = Checkpoint.objects.filter(pk__in=part, experiment=experiment).exclude(
                pinned()
            )
            # choices.DELETABLE_STATES in two UPDATEs: the candidates leave the summary's
            # counts, with the bytes this run holds after the first UPDATE less those before it.
            holding = Checkpoint.objects.filter(
                pk__in=part, gc_run=run, state=CheckpointState.DELETING
            )
            before = summary.bytes_of(holding)
            left = claimable.filter(state__in=GC_CANDIDATE_STATES).update(**claim)
            left_bytes = summary.bytes_of(holding) - before if left else 0
            claimed += left + claimable.filter(state=CheckpointState.ERROR).update(**claim)
            summary.add(experiment, candidates=-left, candidate_bytes=-left_bytes)
        held = Checkpoint.objects.filter(gc_run=run, state=CheckpointState.DELETING).count()
        run.refresh_from_db(fields=["deleted", "failed"])
        GCRun.objects.filter(pk=run.pk).update(
            policy=policy.as_dict(), total=run.deleted + run.failed + held
        )
    refresh_statistics(claimed)
    return claimed


def adopt_orphans(run: GCRun) -> int:
    """Take over the experiment's DELETING checkpoints whose run has finished or vanished."""
    adopted = Checkpoint.objects.filter(
        experiment_id=run.experiment_id, state=CheckpointState.DELETING, gc_run__isnull=True
    ).update(gc_run=run)
    dead_runs = (
        GCRun.objects.filter(
            experiment_id=run.experiment_id,
            state__in=RUN_TERMINAL_STATES,
            claimed_checkpoints__state=CheckpointState.DELETING,
        )
        # A dead FILES run's checkpoint is resumed with its globs, never deleted whole.
        .exclude(reason=GCReason.FILES)
        .values_list("pk", flat=True)
        .distinct()
    )
    for dead in list(dead_runs):
        # Compare-and-set per dead run: the WHERE is re-checked on the row itself.
        adopted += Checkpoint.objects.filter(state=CheckpointState.DELETING, gc_run_id=dead).update(
            gc_run=run
        )
    if adopted:
        logger.info("GC run %s adopted %s orphaned checkpoint(s)", run.pk, adopted)
    return adopted


def listed_state(checkpoint: Checkpoint, present: dict[str, int]) -> dict:
    """The row of an ERROR checkpoint once storage lists ``present`` (path -> bytes) for it.

    ``resources`` and ``size_bytes`` become the listing; the state is DELETED when nothing
    is left of a checkpoint that had files, COMPLETED when every file it reported is there
    with its size, else PARTIALLY_DELETED.
    """
    changes = {"resources": present, "size_bytes": sum(present.values())}
    if not present and checkpoint.resources:
        return {**changes, "state": CheckpointState.DELETED, "error": "", "deletion_failures": 0}
    if all(present.get(path) == size for path, size in checkpoint.resources.items()):
        return {**changes, "state": CheckpointState.COMPLETED, "error": ""}
    return {**changes, "state": CheckpointState.PARTIALLY_DELETED}


def reconcile_errors(run: GCRun, backend) -> int:
    """Make the experiment's ERROR checkpoints what their storage lists (``listed_state``).

    Those with files left become candidates again, and the ranking then decides whether
    they are deleted. A SWEEP run leaves the ones that need attention alone (its retries
    are bounded: ``record.MAX_DELETION_FAILURES``). Returns how many were reconciled.
    """
    reconciled = reconciled_bytes = gone = gone_bytes = shrunk = 0
    errors = Checkpoint.objects.filter(
        experiment_id=run.experiment_id, state=CheckpointState.ERROR
    ).order_by("id")
    if run.reason == GCReason.SWEEP:
        errors = errors.exclude(error__startswith=NEEDS_ATTENTION)
    errors = errors.annotate(gc_run_reason=F("gc_run__reason"))
    for checkpoint in errors.only("id", "uuid", "resources", "error", "size_bytes"):
        jobs.beat(GCRun, run.pk)
        try:
            present = stored_files(backend, str(checkpoint.uuid))
        except StorageError as exc:
            logger.warning("GC run %s cannot list %s: %s", run.pk, checkpoint.uuid, exc)
            continue
        except UnsafePath as exc:
            # Never checkable as it is (a symlinked directory, a symlink leading out of
            # it): it stays ERROR with a reason that says so, and the sweep stops retrying
            # it (an admin must look). A file it cannot see is never taken for deleted.
            logger.warning("GC run %s cannot check %s: %s", run.pk, checkpoint.uuid, exc)
            Checkpoint.objects.filter(pk=checkpoint.pk, state=CheckpointState.ERROR).update(
                error=f"{UNCHECKABLE}{exc}"[: jobs.MAX_ERROR_CHARS]
            )
            continue
        changes = listed_state(checkpoint, present)
        deleted = changes["state"] == CheckpointState.DELETED
        if run.reason == GCReason.SWEEP and checkpoint.gc_run_reason != GCReason.FILES:
            # The sweep may retry this deletion (deletion_set): it was asked for. A failed
            # FILES run asked for some files only; the checkpoint itself is not retried.
            changes["gc_run"] = run
        if Checkpoint.objects.filter(pk=checkpoint.pk, state=CheckpointState.ERROR).update(
            **changes
        ):
            if deleted:
                gone += 1
                gone_bytes += checkpoint.size_bytes
            else:
                reconciled += 1
                reconciled_bytes += changes["size_bytes"]
                shrunk += checkpoint.size_bytes - changes["size_bytes"]
    summary.add(
        run.experiment_id,
        candidates=reconciled,
        candidate_bytes=reconciled_bytes,
        live=-gone,
        deleted=gone,
        live_bytes=-(gone_bytes + shrunk),
    )
    return reconciled


def listed_after_failure(backend, errors: dict[str, str]) -> dict[str, Listed]:
    """List each checkpoint whose deletion reported an error: what storage holds of it now.

    An error does not prove the files stayed (S3 may have deleted them and the answer been
    lost), so the listing decides: a checkpoint with nothing left leaves ``errors`` (it is
    DELETED); one that cannot be checked gets an error that says so (``UNCHECKABLE``);
    one that cannot be listed keeps its error and its row. Changes ``errors`` in place.
    """
    listed: dict[str, Listed] = {}
    for name in list(errors):
        try:
            present = stored_files(backend, name)
        except StorageError as exc:
            logger.warning("Cannot list %s after its deletion failed: %s", name, exc)
            continue
        except UnsafePath as exc:
            errors[name] = f"{UNCHECKABLE}{exc}"
            continue
        listed[name] = Listed(present)
        if not present:
            del errors[name]
    return listed


def delete_claimed(run: GCRun, backend, final_attempt: bool) -> None:
    """Delete the files of every checkpoint ``run`` holds, one batch at a time."""
    size = settings.CKPTWEB_GC_BATCH_SIZE
    files_run = run.reason == GCReason.FILES
    while True:
        jobs.beat(GCRun, run.pk)
        batch = list(
            Checkpoint.objects.filter(gc_run=run, state=CheckpointState.DELETING)
            # UUID order: a batch's directories are neighbours in the store's key space, so
            # object stores list them with a few ranged requests (see S3Backend._keys_of).
            .order_by("uuid")
            .only("id", "uuid", "size_bytes", *(["resources"] if files_run else []))[:size]
        )
        if not batch:
            return
        # The deletion kernel has the last word, right before storage is called.
        refused = kernel.refusals((c.uuid for c in batch), run.pk)
        allowed = [c for c in batch if str(c.uuid) not in refused]
        uuids = [str(c.uuid) for c in allowed]
        errors: dict[str, str] = {}
        listed: dict[str, Listed] = {}
        try:
            if files_run and allowed:
                errors, listed = delete_matching_files(backend, allowed, run.globs)
            elif allowed:
                errors = backend.delete_checkpoints(uuids).errors
            if errors:
                storage_reachable(backend)
                if not files_run:
                    listed = listed_after_failure(backend, errors)
        except TransientStorageError as exc:
            if not final_attempt:
                # Record what did go; the rest stays DELETING (ours) for the retry.
                done = [c for c in allowed if errors and str(c.uuid) not in errors]
                record_batch(run.pk, done, {}, listed)
                raise
            errors = dict.fromkeys(uuids, str(exc)) | errors
        except StorageError as exc:
            errors = dict.fromkeys(uuids, str(exc))
        except UnsafePath as exc:  # part of a FILES run's checkpoint cannot be checked
            errors = dict.fromkeys(uuids, f"{UNCHECKABLE}{exc}")
        except Exception as exc:  # a bug must not leave the checkpoints DELETING forever
            logger.exception("GC run %s: deleting a batch failed", run.pk)
            errors = dict.fromkeys(uuids, f"unexpected error: {type(exc).__name__}: {exc}")
        for uuid, reason in refused.items():  # untouched, and left for an administrator
            logger.error("GC run %s refused to delete %s: %s", run.pk, uuid, reason)
            errors[uuid] = f"{NEEDS_ATTENTION}not deleted: {reason}"
        scrubbed = {key: run.scrub(text) for key, text in errors.items()}
        record_batch(run.pk, batch, scrubbed, listed)


def storage_reachable(backend) -> None:
    """Raise TransientStorageError when the storage cannot be reached at all.

    Backends report per-checkpoint errors as text; when some checkpoints failed, this tells
    "the storage is down" (retry the run later) from "these files will not go" (ERROR).
    """
    backend.check_connection()


def delete_experiment_rows(experiment_id: int) -> bool:
    """Delete a DELETING experiment's rows once all its checkpoints are DELETED."""
    with transaction.atomic():
        # FOR UPDATE (not NO KEY): a checkpoint reported meanwhile must wait, then fail.
        experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
        if experiment is None or experiment.state != ExperimentState.DELETING:
            return False
        if experiment.checkpoints.exclude(state=CheckpointState.DELETED).exists():
            return False
        # The checkpoints first, in chunks: Django's cascade would null their SET_NULL
        # references (scan items, runs) in one UPDATE with one parameter per checkpoint.
        for part in chunked(list(experiment.checkpoints.values_list("pk", flat=True))):
            Checkpoint.objects.filter(pk__in=part).delete()
        experiment.delete()
    logger.info("Experiment %s deleted: no checkpoint file is left", experiment_id)
    return True


# --- enqueueing ------------------------------------------------------------------------------


@jobs.run_task(name="experiments.tasks.run_gc")
def run_gc(self, run_id: int) -> None:
    """Execute (or resume) GC run ``run_id``; a missing or finished run is a no-op.

    TransientStorageError makes Celery retry with backoff; on the last attempt the failure
    is recorded on the checkpoints (ERROR) instead, for the sweep to retry later.
    """
    execute_run(run_id, final_attempt=jobs.is_final_attempt(self))


def enqueue(run_id: int) -> None:
    """Send ``run_gc`` for a run (on commit of the transaction that created it, or again)."""
    run_gc.delay(run_id)
