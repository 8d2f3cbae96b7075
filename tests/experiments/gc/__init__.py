"""Tests of garbage collection: the run, the sweep, faults and a real Celery worker."""
