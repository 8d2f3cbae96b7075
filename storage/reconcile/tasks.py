"""Celery tasks of storage reconciliation; thin wrappers around the scan and the deletion.

Arguments are primitive ids (JSON serializer). Both tasks are safe to run twice: a scan or
deletion that is missing or already finished is a no-op. They keep the names they were
registered under (``storage.tasks.*``), and ``storage/tasks.py`` imports them for Celery's
autodiscovery.
"""

from ckptweb import jobs
from storage.reconcile.orphans import execute_deletion
from storage.reconcile.scan import execute_scan


@jobs.run_task(name="storage.tasks.run_scan")
def run_scan(self, scan_id: int) -> None:
    """Run (or restart) storage scan ``scan_id``; see ``scan.execute_scan``."""
    execute_scan(scan_id, final_attempt=jobs.is_final_attempt(self))


@jobs.run_task(name="storage.tasks.delete_orphans")
def delete_orphans(self, deletion_id: int) -> None:
    """Delete (or resume deleting) the orphans of ``deletion_id``; see ``execute_deletion``."""
    execute_deletion(deletion_id, final_attempt=jobs.is_final_attempt(self))
