"""Fixtures of the registry tests: checkpoints of alice's trial whose files exist, a model."""

import pytest

from experiments import registry
from tests.factories import report_with_files


@pytest.fixture
def checkpoints(trial, default_storage):
    """Three checkpoints of alice's trial at steps 100, 200, 300 (losses 0.5, 0.4, 0.3)."""
    return [
        report_with_files(
            default_storage,
            trial,
            steps,
            {"state-dict.pth": bytes([steps % 256]) * steps, "code/model_def.py": b"x = 1\n"},
            metric=loss,
        )
        for steps, loss in ((100, 0.5), (200, 0.4), (300, 0.3))
    ]


@pytest.fixture
def model(alice):
    return registry.create_model(alice, "resnet-prod", "the production model", ["vision"])
