"""The periodic GC sweep: retire dead runs and start SWEEP runs where work is left.

The periodic sweep (``sweep``) retires runs whose heartbeat stopped (``ckptweb.jobs``), re-enqueues
runs that never started, and starts a SWEEP run for every experiment with ERROR
checkpoints, orphaned DELETING checkpoints, or rows left to delete. A SWEEP run first

* **adopts** DELETING checkpoints whose run is gone and finishes deleting them: they were
  claimed by a run that had decided to delete them, and some of their files may be gone
  already, so there is nothing intact left to retain. Checkpoints of a dead FILES run are
  not adopted: the sweep gives them a new FILES run with the same globs
  (``partial_deletion.resume_orphaned_deletions``);
* **reconciles** each ERROR checkpoint with its storage: COMPLETED when every file it
  reported is still there, PARTIALLY_DELETED when some are gone. That makes it a candidate
  again, so the usual ranking with the *current* policy decides: it is retried only if the
  policy still deletes it, and a checkpoint the policy now retains keeps its files (and is
  COMPLETED only when they are all there). An ERROR checkpoint whose storage cannot be
  listed stays ERROR for the next sweep.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from ckptweb import jobs
from ckptweb.jobs import RUN_ACTIVE_STATES, RUN_TERMINAL_STATES, RunState
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import execute
from experiments.gc.files import resume_orphaned_deletions
from experiments.gc.runs import start_gc_run
from experiments.models import Checkpoint, Experiment, GCRun


def sweep() -> list[int]:
    """Periodic repair: retire dead runs and start SWEEP runs where work is left.

    Returns the ids of the runs it started.
    """
    stale = settings.CKPTWEB_GC_STALE_SECONDS
    retired = jobs.retire_stale(GCRun.objects.all(), stale)
    needy = set(GCRun.objects.filter(pk__in=retired).values_list("experiment_id", flat=True))
    resumed = resume_orphaned_deletions()
    cutoff = jobs.stale_cutoff(stale)
    never_started = GCRun.objects.filter(state=RunState.PENDING, created_at__lt=cutoff)
    for run_id in list(never_started.values_list("pk", flat=True)):
        execute.enqueue(run_id)  # its first message may have been lost

    busy = set(
        GCRun.objects.filter(state__in=RUN_ACTIVE_STATES).values_list("experiment_id", flat=True)
    )
    needy |= set(
        Checkpoint.objects.filter(
            Q(state=CheckpointState.ERROR)
            | Q(state=CheckpointState.DELETING, gc_run__isnull=True)
            | Q(state=CheckpointState.DELETING, gc_run__state__in=RUN_TERMINAL_STATES)
        )
        .exclude(gc_run__reason=GCReason.FILES, state=CheckpointState.DELETING)
        .values_list("experiment_id", flat=True)
    )
    # Experiments being deleted with files left to delete, or only rows left.
    deleting = Experiment.objects.filter(state=ExperimentState.DELETING)
    needy |= set(
        deleting.filter(
            checkpoints__protected=False,
            checkpoints__state__in=execute.CLAIMABLE_STATES,
        ).values_list("pk", flat=True)
    )
    needy |= set(
        deleting.exclude(
            pk__in=Checkpoint.objects.exclude(state=CheckpointState.DELETED).values("experiment_id")
        ).values_list("pk", flat=True)
    )
    started = list(resumed)
    for experiment in Experiment.objects.filter(pk__in=needy - busy).order_by("pk"):
        with transaction.atomic():
            run = start_gc_run(
                experiment, GCReason.SWEEP, policy=execute.effective_policy(experiment)
            )
        started.append(run.pk)
    return started


@shared_task(name="experiments.tasks.gc_sweep")
def gc_sweep() -> list[int]:
    """Periodic sweep (Celery beat): retire dead runs and retry what is left; see ``sweep``."""
    return sweep()
