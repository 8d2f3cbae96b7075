"""Fixtures of the scale tests: alice's experiment with a trial (as in tests/api)."""

import pytest

from experiments import services
from tests.api.conftest import make_experiment


@pytest.fixture
def experiment(alice, default_storage):
    """alice's experiment, metric ``loss`` (smaller is better)."""
    return make_experiment(alice, default_storage)


@pytest.fixture
def trial(experiment):
    return services.create_trial(experiment, {"lr": 0.1})
