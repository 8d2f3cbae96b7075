"""gunicorn config for the crash test: every storage delete sleeps first
(tests/experiments/gc/worker_hooks.py)."""


def post_worker_init(worker):
    import tests.experiments.gc.worker_hooks  # noqa: F401 - patches the storage backends on import
