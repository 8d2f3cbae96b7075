"""Celery tasks of the experiments app; thin wrappers around ``experiments.gc``.

Arguments are primitive ids (JSON serializer). Both tasks are safe to run twice.
"""

from celery import shared_task
from django.conf import settings

from experiments import gc
from storage.backends.base import TransientStorageError

#: Attempts after the first when storage fails transiently; the last one records the errors.
MAX_RETRIES = getattr(settings, "CKPTWEB_GC_MAX_RETRIES", 5)
#: First retry delay in seconds; it doubles each time (with jitter), up to RETRY_BACKOFF_MAX.
RETRY_BACKOFF = getattr(settings, "CKPTWEB_GC_RETRY_BACKOFF", 5)


@shared_task(
    bind=True,
    autoretry_for=(TransientStorageError,),
    retry_backoff=RETRY_BACKOFF,
    retry_backoff_max=gc.RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
    acks_late=True,
)
def run_gc(self, run_id: int) -> None:
    """Execute (or resume) GC run ``run_id``; a missing or finished run is a no-op.

    TransientStorageError makes Celery retry with backoff; on the last attempt the failure
    is recorded on the checkpoints (ERROR) instead, for the sweep to retry later.
    """
    final_attempt = self.request.retries >= (self.max_retries or 0)
    gc.execute_run(run_id, final_attempt=final_attempt)


@shared_task
def gc_sweep() -> list[int]:
    """Periodic sweep (Celery beat): retire dead runs and retry what is left; see gc.sweep."""
    return gc.sweep()
