"""Fixtures of the scale tests: alice's experiment with a trial, as in tests/api."""

from tests.api.conftest import experiment, trial  # noqa: F401
