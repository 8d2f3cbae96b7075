"""Fixtures of the API tests: a checkpoint of alice's trial (the rest is in tests/conftest.py)."""

import pytest

from tests.factories import add_checkpoints


@pytest.fixture
def checkpoint(trial):
    """A checkpoint of ``trial`` at steps 100 with loss 0.5."""
    return add_checkpoints(trial, [(100, 0.5)])[0]
