"""Settings of the Celery worker subprocesses started by the GC tests.

The project's settings (DATABASE_URL and CELERY_BROKER_URL come from the environment the
fixture sets), with small GC batches, quick retries and a short stale threshold so that a
fault test finishes in seconds, and ``worker_hooks`` imported to slow storage down.
"""

from ckptweb.settings import *  # noqa: F403

CKPTWEB_GC_BATCH_SIZE = 2
CKPTWEB_RUN_MAX_RETRIES = 2
CKPTWEB_RUN_RETRY_BACKOFF = 1
CKPTWEB_GC_STALE_SECONDS = 6
CELERY_IMPORTS = ["tests.experiments.gc.worker_hooks"]
