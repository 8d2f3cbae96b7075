"""gunicorn config for the crash test: every storage delete sleeps first (tests/gc/worker_hooks)."""


def post_worker_init(worker):
    import tests.gc.worker_hooks  # noqa: F401 - patches the storage backends on import
