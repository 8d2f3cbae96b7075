"""Celery tasks of the storage app, found here by Celery's autodiscovery.

They live with what they run, in ``storage.reconcile.tasks``.
"""

from storage.reconcile.tasks import delete_orphans, run_scan

__all__ = ["delete_orphans", "run_scan"]
