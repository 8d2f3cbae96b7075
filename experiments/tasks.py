"""The index of the experiments app's Celery tasks, found here by Celery's autodiscovery.

Each task lives with what it runs and keeps the name it was first registered under:
``experiments.tasks.run_gc`` (``experiments.gc.execute.run_gc``, one GC run) and
``experiments.tasks.gc_sweep`` (``experiments.gc.sweep.gc_sweep``, the periodic sweep).
Queued messages and the beat schedule name them so.
"""

from experiments.gc.execute import run_gc
from experiments.gc.sweep import gc_sweep

__all__ = ["gc_sweep", "run_gc"]
