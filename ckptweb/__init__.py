"""ckptweb: a dashboard and REST service for ML training checkpoints."""

from .celery import app as celery_app

__all__ = ("celery_app",)
