"""Celery tasks of the storage app; thin wrappers around ``storage.reconcile``.

Arguments are primitive ids (JSON serializer). Both tasks are safe to run twice: a scan or
deletion that is missing or already finished is a no-op.
"""

import functools

from celery import shared_task
from django.conf import settings

from storage import reconcile
from storage.backends.base import TransientStorageError

#: Attempts after the first when storage fails transiently; the last one records the error.
MAX_RETRIES = getattr(settings, "CKPTWEB_SCAN_MAX_RETRIES", 5)
#: First retry delay in seconds, doubling with jitter up to RETRY_BACKOFF_MAX.
RETRY_BACKOFF = getattr(settings, "CKPTWEB_SCAN_RETRY_BACKOFF", 5)
RETRY_BACKOFF_MAX = 120


#: Both tasks retry transient storage failures with backoff and are safe to run twice.
retrying_task = functools.partial(
    shared_task,
    bind=True,
    autoretry_for=(TransientStorageError,),
    retry_backoff=RETRY_BACKOFF,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
    acks_late=True,
)


@retrying_task()
def run_scan(self, scan_id: int) -> None:
    """Run (or restart) storage scan ``scan_id``; see ``reconcile.execute_scan``."""
    final_attempt = self.request.retries >= (self.max_retries or 0)
    reconcile.execute_scan(scan_id, final_attempt=final_attempt)


@retrying_task()
def delete_orphans(self, deletion_id: int) -> None:
    """Delete (or resume deleting) the orphans of ``deletion_id``; see ``execute_deletion``."""
    final_attempt = self.request.retries >= (self.max_retries or 0)
    reconcile.execute_deletion(deletion_id, final_attempt=final_attempt)
