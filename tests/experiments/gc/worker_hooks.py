"""Imported by the test worker only (``CELERY_IMPORTS``): makes every storage slow.

Each ``delete_checkpoints`` call first sleeps ``CKPTWEB_TEST_DELETE_DELAY`` seconds, so a
run of a few batches lasts long enough for a test to stop S3 or SIGKILL the worker between
two batches. Nothing else changes.
"""

import functools
import os
import time

from storage.backends import BACKENDS

DELAY = float(os.environ.get("CKPTWEB_TEST_DELETE_DELAY", "0") or 0)


def _slowed(method):
    """``method`` preceded by a sleep of DELAY seconds."""

    @functools.wraps(method)
    def slow_delete(self, checkpoint_uuids):
        time.sleep(DELAY)
        return method(self, checkpoint_uuids)

    slow_delete.slowed = True
    return slow_delete


if DELAY:
    for backend_class in BACKENDS.values():
        if not getattr(backend_class.delete_checkpoints, "slowed", False):
            backend_class.delete_checkpoints = _slowed(backend_class.delete_checkpoints)
