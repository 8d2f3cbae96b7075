"""Fixtures of the API tests: alice's experiment with a trial, and reporting helpers."""

import pytest

from experiments import services
from experiments.models import Experiment


def make_experiment(owner, storage, name="exp", metric="loss", smaller_is_better=True):
    """An experiment row of ``owner`` on ``storage`` (no config parsing)."""
    return Experiment.objects.create(
        name=name,
        owner=owner,
        searcher_metric=metric,
        smaller_is_better=smaller_is_better,
        storage=storage,
        config={"searcher": {"metric": metric}},
    )


def add_checkpoints(trial, rows):
    """Report checkpoints through the services: rows of (steps, metric or None)."""
    checkpoints = []
    for steps, metric in rows:
        if metric is not None:
            services.report_validation(trial, steps, {"loss": metric})
        checkpoints.append(
            services.report_checkpoint(trial, steps, resources={"state-dict.pth": steps})
        )
    return checkpoints


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Persona passwords hash with MD5 here: PBKDF2 costs ~1 s per user on CI machines."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def experiment(alice, default_storage):
    """alice's experiment, metric ``loss`` (smaller is better)."""
    return make_experiment(alice, default_storage)


@pytest.fixture
def trial(experiment):
    return services.create_trial(experiment, {"lr": 0.1})


@pytest.fixture
def checkpoint(trial):
    return add_checkpoints(trial, [(100, 0.5)])[0]
