"""One lifecycle for every background run: GC runs, storage scans and orphan deletions.

A run is a row (a subclass of the abstract ``Run``) that one Celery task works on, in
steps that are each a compare-and-set UPDATE, so two workers, a retry or a crash never
make a run do its work twice or end twice:

1. **claim** — ``PENDING | RUNNING -> RUNNING``, touching ``heartbeat`` (and setting
   ``started_at`` once). Claiming a missing or finished row matches nothing: the task is a
   no-op, as a duplicate delivery should be. RUNNING stays claimable so a Celery retry
   resumes its own run.
2. **beat** — before every batch the run touches ``heartbeat`` with a compare-and-set on
   ``state=RUNNING``; when that matches nothing the run was retired meanwhile and
   ``RunLost`` stops it (whoever retired it has taken its work over).
3. **finish** — ``RUNNING -> SUCCEEDED | FAILED`` with the (secret-free) error text.
4. **retire_stale** — a RUNNING row whose heartbeat is older than the stale limit is taken
   for dead and declared FAILED, row by row, each a compare-and-set that re-checks the
   heartbeat, so a run that beat since the SELECT is left alone. The GC sweep retires dead
   GC runs and takes over their checkpoints; requesting a scan (or an orphan deletion)
   retires a dead one first.

``execute`` is one attempt of a task: claim, work, finish. A transient storage error is
re-raised for Celery to retry (after a beat, so the wait is not taken for death) unless it
is the last attempt, which ends the run FAILED with the error like any storage error. An
unexpected error ends the run FAILED at once and is re-raised. ``run_task`` is the one
Celery decorator of the three tasks: transient storage errors retried with exponential
backoff and jitter (``CKPTWEB_RUN_*`` settings), ``acks_late``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ckptweb.lib.errors import ExternalError, TransientError

logger = logging.getLogger(__name__)


class RunState(models.TextChoices):
    """Lifecycle of every background run (GC run, storage scan, orphan deletion).

    PENDING -> RUNNING -> SUCCEEDED | FAILED. A transient storage error keeps a run RUNNING
    while Celery retries it; its last attempt ends FAILED with ``error`` set. A RUNNING row
    whose ``heartbeat`` stopped is retired (FAILED) by ``ckptweb.jobs.retire_stale``.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


RUN_ACTIVE_STATES = (RunState.PENDING, RunState.RUNNING)
RUN_TERMINAL_STATES = (RunState.SUCCEEDED, RunState.FAILED)

#: Longest error text kept on a run (and on each of its items).
MAX_ERROR_CHARS = 2000
#: The error of a run declared dead.
STALE_ERROR = "The worker stopped reporting progress."


class Run(models.Model):
    """What every background run records: its state, when it ran, its heartbeat, its error."""

    State = RunState

    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        """SUCCEEDED or FAILED: the run will not change again (pages stop polling it)."""
        return self.state in RUN_TERMINAL_STATES

    def scrub(self, text: str) -> str:
        """``text`` without the secrets of the run's storage (overridden by each run)."""
        return text


class RunLost(Exception):
    """The run is no longer RUNNING (finished, or retired as stale): stop working on it."""


def claim(model: type[Run], pk: int, **changes) -> bool:
    """PENDING or RUNNING -> RUNNING (plus ``changes``); False when missing or finished."""
    now = timezone.now()
    if not model.objects.filter(pk=pk, state__in=RUN_ACTIVE_STATES).update(
        state=RunState.RUNNING, heartbeat=now, **changes
    ):
        return False
    model.objects.filter(pk=pk, started_at__isnull=True).update(started_at=now)
    return True


def beat(model: type[Run], pk: int, **changes) -> None:
    """Touch the heartbeat (saving ``changes``); RunLost when the run is no longer RUNNING."""
    if not model.objects.filter(pk=pk, state=RunState.RUNNING).update(
        heartbeat=timezone.now(), **changes
    ):
        raise RunLost(pk)


def finish(model: type[Run], pk: int, state: str, error: str = "") -> bool:
    """RUNNING -> ``state`` (SUCCEEDED or FAILED) with ``error``; False if not RUNNING."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, state=RunState.RUNNING).update(
            state=state, finished_at=now, heartbeat=now, error=error[:MAX_ERROR_CHARS]
        )
    )


def abandon(model: type[Run], pk: int, error: str) -> None:
    """``finish`` FAILED after an unexpected error; best effort, never raises."""
    try:
        finish(model, pk, RunState.FAILED, error)
    except Exception:  # the database itself may be what failed: retire_stale still finds it
        logger.warning("%s %s could not be marked FAILED", model.__name__, pk)


def stale_cutoff(stale_seconds: int):
    """The time before which a heartbeat (or, for a run never beaten, creation) is dead."""
    return timezone.now() - timedelta(seconds=stale_seconds)


def _stopped_beating(cutoff) -> Q:
    return Q(state=RunState.RUNNING) & (
        Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True, created_at__lt=cutoff)
    )


def retire_stale(queryset: models.QuerySet, stale_seconds: int) -> list[int]:
    """Declare the RUNNING runs of ``queryset`` that stopped beating FAILED; their ids."""
    now = timezone.now()
    dead = _stopped_beating(stale_cutoff(stale_seconds))
    retired = []
    for pk in list(queryset.filter(dead).values_list("pk", flat=True)):
        # Compare-and-set: the WHERE is re-checked on the row, so a fresh beat wins.
        if queryset.model.objects.filter(dead, pk=pk).update(
            state=RunState.FAILED, finished_at=now, error=STALE_ERROR
        ):
            logger.warning("%s %s stopped beating; retired", queryset.model.__name__, pk)
            retired.append(pk)
    return retired


def execute(
    queryset: models.QuerySet,
    pk: int,
    work: Callable[[Run], str],
    final_attempt: bool,
    **claim_changes,
) -> Run | None:
    """One attempt of run ``pk``: claim it, ``work(run)`` -> end state, finish it.

    Returns the run as it is afterwards, or None when it was missing or finished already.
    ``queryset`` loads the run (with what ``work`` needs selected); ``claim_changes`` are
    saved with the claim.
    """
    model = queryset.model
    if not claim(model, pk, **claim_changes):
        return None
    run = queryset.get(pk=pk)
    try:
        state = work(run)
    except RunLost:
        logger.info("%s %s was taken over; stopping", model.__name__, pk)
    except TransientError as exc:
        if not final_attempt:
            with suppress(RunLost):  # the retry's wait starts now
                beat(model, pk)
            raise
        finish(model, pk, RunState.FAILED, run.scrub(str(exc)))
    except ExternalError as exc:
        finish(model, pk, RunState.FAILED, run.scrub(str(exc)))
    except Exception as exc:
        # A bug or a database error: end the run now rather than leave it RUNNING until it
        # is retired as stale; whoever retires or sweeps next takes over what it held.
        logger.exception("%s %s failed unexpectedly", model.__name__, pk)
        abandon(model, pk, run.scrub(f"unexpected error: {type(exc).__name__}"))
        raise
    else:
        finish(model, pk, state)
    return model.objects.filter(pk=pk).first()


def is_final_attempt(task) -> bool:
    """True on a bound task's last attempt (its failures are recorded, not retried)."""
    return task.request.retries >= (task.max_retries or 0)


def run_task(**options):
    """The Celery task decorator of every run: transient storage errors retried with backoff.

    Tasks take the run's id, call the run's ``execute_*`` with ``is_final_attempt(self)``
    and are safe to run twice.
    """
    return shared_task(
        bind=True,
        autoretry_for=(TransientError,),
        retry_backoff=settings.CKPTWEB_RUN_RETRY_BACKOFF,
        retry_backoff_max=settings.CKPTWEB_RUN_RETRY_BACKOFF_MAX,
        retry_jitter=True,
        max_retries=settings.CKPTWEB_RUN_MAX_RETRIES,
        acks_late=True,
        **options,
    )


__all__ = [
    "Run",
    "RunLost",
    "abandon",
    "beat",
    "claim",
    "execute",
    "finish",
    "is_final_attempt",
    "retire_stale",
    "run_task",
    "stale_cutoff",
]
