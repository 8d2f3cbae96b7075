from importlib import import_module

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self):
        # Binds the shared tasks to the project's Celery app (eager without a broker) in every
        # Django process. ckptweb/__init__.py stays empty so that the HTTP-only client loads
        # no Celery (docs/architecture.md, "Celery wiring").
        import_module("ckptweb.celery")
