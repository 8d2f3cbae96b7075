"""The GC sweep without Celery beat: a daemon timer thread in every serving process.

With a broker, Celery beat sends ``gc_sweep`` every ``CKPTWEB_GC_SWEEP_SECONDS``. In the
embedded default (no ``CELERY_BROKER_URL``, tasks eager) nothing would ever send it, so a
GC run whose process died (a gunicorn worker SIGKILLed, the machine rebooted) would stay
RUNNING and its claimed checkpoints DELETING forever. Instead each serving process runs
this timer, which calls the same :func:`experiments.gc.sweep.sweep` (there is one sweep): it
retires runs whose heartbeat is older than ``CKPTWEB_GC_STALE_SECONDS`` and starts SWEEP
runs, which execute in the timer thread (eager tasks).

**Where it starts (a decision):** from ``ckptweb/wsgi.py``, i.e. in the processes that
import the WSGI application — each gunicorn worker, ``runserver``'s serving child — and
never in management commands, Celery workers or the test suite (pytest-django's live
server uses Django's handler directly). ``start()`` is idempotent per process id and
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

from django.conf import settings
from django.db import close_old_connections, connections

from experiments.gc.sweep import sweep

logger = logging.getLogger(__name__)

#: Seconds before the first sweep of a process (capped by the interval).
FIRST_SWEEP_DELAY = 5.0

_lock = threading.Lock()
_started_pid: int | None = None


def enabled() -> bool:
    """True in the embedded default: no broker (so no beat), and not switched off."""
    if settings.CELERY_BROKER_URL:
        return False
    return settings.CKPTWEB_INPROCESS_SWEEP


def start() -> threading.Thread | None:
    """Start this process's sweep timer once; None when disabled or already running."""
    global _started_pid
    if not enabled():
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
        start()


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
