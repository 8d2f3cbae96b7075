"""Fixtures of the registry tests: alice's experiment with checkpoints whose files exist."""

from pathlib import Path

import pytest

from experiments import registry, services
from tests.api.conftest import make_experiment


def write_files(storage, checkpoint, files: dict[str, bytes]) -> None:
    """Put a checkpoint's files under a shared_fs storage."""
    root = Path(storage.host_path) / str(checkpoint.uuid)
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


@pytest.fixture
def experiment(alice, default_storage):
    return make_experiment(alice, default_storage)


@pytest.fixture
def trial(experiment):
    return services.create_trial(experiment, {"lr": 0.1})


@pytest.fixture
def checkpoints(trial, default_storage):
    """Three checkpoints of alice's trial at steps 100, 200, 300 (losses 0.5, 0.4, 0.3)."""
    made = []
    for steps, loss in ((100, 0.5), (200, 0.4), (300, 0.3)):
        services.report_validation(trial, steps, {"loss": loss})
        files = {"state-dict.pth": bytes([steps % 256]) * steps, "code/model_def.py": b"x = 1\n"}
        checkpoint = services.report_checkpoint(
            trial, steps, resources={path: len(data) for path, data in files.items()}
        )
        write_files(default_storage, checkpoint, files)
        made.append(checkpoint)
    return made


@pytest.fixture
def model(alice):
    return registry.create_model(alice, "resnet-prod", "the production model", ["vision"])
