"""The periodic GC sweep: retire dead runs and start SWEEP runs where work is left.

The periodic sweep (``sweep``) retires runs whose heartbeat stopped (``ckptweb.jobs``),
re-enqueues runs that never started, and starts a SWEEP run for every experiment with ERROR
checkpoints, orphaned DELETING checkpoints, or rows left to delete. Its retries are
bounded: an ERROR checkpoint whose error starts with ``record.NEEDS_ATTENTION`` (its files
cannot be checked, or its deletion failed ``record.MAX_DELETION_FAILURES`` times in a row)
starts no run and no SWEEP run retries it; an explicit run does. A SWEEP run **adopts**
the DELETING checkpoints whose run is gone and finishes deleting them: they were claimed by a
run that had decided to delete them, and some of their files may be gone already, so there is
nothing intact left to retain. Checkpoints of a dead FILES run are not adopted: the sweep gives
them a new FILES run with the same globs (``files.resume_orphaned_deletions``). Like every
run, it then reconciles the ERROR checkpoints (``execute``'s docstring).

**Without Celery beat: a daemon timer thread in every serving process.**

With a broker, Celery beat sends ``gc_sweep`` every ``CKPTWEB_GC_SWEEP_SECONDS``. In the
embedded default (no ``CELERY_BROKER_URL``, tasks eager) nothing would ever send it, so a
GC run whose process died (a gunicorn worker SIGKILLed, the machine rebooted) would stay
RUNNING and its claimed checkpoints DELETING forever. Instead each serving process runs
this timer, which calls the same ``sweep`` (there is one sweep): it
retires runs whose heartbeat is older than ``CKPTWEB_GC_STALE_SECONDS`` and starts SWEEP
runs, which execute in the timer thread (eager tasks).

**Where it starts (a decision):** from ``ckptweb/wsgi.py``, i.e. in the processes that
import the WSGI application — each gunicorn worker, ``runserver``'s serving child — and
never in management commands, Celery workers or the test suite (pytest-django's live
server uses Django's handler directly). ``start_timer()`` is idempotent per process id and
re-runs in a forked child, so a ``--preload`` application still gets one timer per worker.
Several processes sweeping at once is safe: every state change of a run is a
compare-and-set, so a duplicate SWEEP run finds nothing to claim. The first sweep runs a
few seconds after start-up, so a run that died with the previous server is resumed once
its heartbeat is stale, without waiting a full interval.
"""

from __future__ import annotations

import logging
import os
import random
import threading

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import Q

from ckptweb import jobs
from ckptweb.audit.record import prune as prune_audit_log
from ckptweb.jobs import RUN_ACTIVE_STATES, RUN_TERMINAL_STATES, RunState
from experiments.choices import DELETABLE_STATES, CheckpointState, ExperimentState, GCReason
from experiments.gc import execute
from experiments.gc.files import resume_orphaned_deletions
from experiments.gc.record import needs_attention
from experiments.gc.runs import start_gc_run
from experiments.models import Checkpoint, Experiment, GCRun
from storage import uploads

logger = logging.getLogger(__name__)


def sweep() -> list[int]:
    """Periodic repair: retire dead runs and start SWEEP runs where work is left.

    Returns the ids of the runs it started. Upload sessions past their expiry are aborted
    first (``storage.uploads.abort_expired``): their files go; audit events past their
    retention are pruned (``ckptweb.audit.record.prune``).
    """
    uploads.abort_expired()
    prune_audit_log()
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
        .exclude(needs_attention())
        .values_list("experiment_id", flat=True)
    )
    # Experiments being deleted with files left to delete, or only rows left.
    deleting = Experiment.objects.filter(state=ExperimentState.DELETING)
    needy |= set(
        deleting.filter(
            pk__in=Checkpoint.objects.filter(protected=False, state__in=DELETABLE_STATES)
            .exclude(needs_attention())
            .values("experiment_id")
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


# --- without Celery beat: the in-process timer ------------------------------------------------

#: Seconds before the first sweep of a process (capped by the interval).
FIRST_SWEEP_DELAY = 5.0

_lock = threading.Lock()
_started_pid: int | None = None


def timer_enabled() -> bool:
    """True in the embedded default: no broker (so no beat), and not switched off."""
    if settings.CELERY_BROKER_URL:
        return False
    return settings.CKPTWEB_INPROCESS_SWEEP


def start_timer() -> threading.Thread | None:
    """Start this process's sweep timer once; None when disabled or already running."""
    global _started_pid
    if not timer_enabled():
        return None
    with _lock:
        if _started_pid == os.getpid():
            return None
        _started_pid = os.getpid()
    thread = threading.Thread(target=_loop, name="ckptweb-gc-sweep", daemon=True)
    thread.start()
    logger.info("In-process GC sweep every %ss (no broker configured)", interval())
    return thread


def _start_in_child() -> None:
    """After ``fork`` the parent's timer thread is gone: start this process's own."""
    if _started_pid is not None:
        start_timer()


os.register_at_fork(after_in_child=_start_in_child)


def interval() -> float:
    return float(settings.CKPTWEB_GC_SWEEP_SECONDS)


def tick() -> list[int]:
    """One sweep; errors are logged, never raised (the timer must keep running)."""
    try:
        return sweep()
    except Exception:
        logger.exception("In-process GC sweep failed; retrying in %ss", interval())
        return []


def _loop() -> None:
    wait = min(FIRST_SWEEP_DELAY, interval())
    while True:
        threading.Event().wait(wait)
        close_old_connections()
        try:
            started = tick()
        finally:
            connections.close_all()  # this thread's own connections: none idles for minutes
        if started:
            logger.info("In-process GC sweep started runs %s", started)
        # Jitter keeps the workers of one server from sweeping in lockstep.
        wait = interval() * random.uniform(0.8, 1.2)  # noqa: S311 - not cryptographic
