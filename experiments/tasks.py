"""Celery tasks of the experiments app; thin wrappers around ``experiments.gc``/``gc_sweep``.

Arguments are primitive ids (JSON serializer). Both tasks are safe to run twice. ``run_gc``
is defined beside ``gc.enqueue``: services start runs through it and the sweep below starts
runs through services, so defining it here would make an import cycle. It is registered
under this module's name, ``experiments.tasks.run_gc``.
"""

from celery import shared_task

from experiments.gc import run_gc
from experiments.gc_sweep import sweep


@shared_task
def gc_sweep() -> list[int]:
    """Periodic sweep (Celery beat): retire dead runs and retry what is left; see gc_sweep."""
    return sweep()


__all__ = ["gc_sweep", "run_gc"]
