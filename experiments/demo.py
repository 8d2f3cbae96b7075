"""Demo data: the spec's GC example and two experiments that look like real training.

Every checkpoint gets small real files on its storage in the spec's PyTorch layout:
``state-dict.pth`` (a ``torch.save``-compatible zip holding a dict with the four keys
``models_state_dict``, ``optimizers_state_dict``, ``lr_schedulers_state_dict`` and
``callbacks``; loadable with ``torch.load(path, weights_only=True)``), ``metadata.json``,
``code/model_def.py`` and ``code/const.yaml``.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import random
import uuid as uuid_lib
import zipfile
from pathlib import Path

import yaml

from experiments import services
from experiments.choices import CheckpointState, ExperimentState
from experiments.models import Experiment, Trial
from storage.models import StorageConfig

SPEC_EXAMPLE = "spec-example"
# (trial, steps_completed, validation metric) for checkpoints 1..10 of the spec's table.
SPEC_TABLE = [
    (1, 100, None),
    (1, 200, None),
    (1, 300, 0.6),
    (1, 400, 0.5),
    (1, 500, 0.4),
    (2, 100, None),
    (2, 200, 0.2),
    (2, 300, 0.3),
    (2, 400, None),
    (2, 500, None),
]

MODEL_DEF = '''"""Model definition of a demo trial."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, hidden: int = {hidden}):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.layers(x)
'''


def torch_compatible_pickle(obj) -> bytes:
    """Bytes in torch.save's zip format for an object without tensors (loads with torch)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def checkpoint_files(experiment: Experiment, trial: Trial, steps: int, rng: random.Random):
    """The files of one demo checkpoint, as {relative path: bytes}."""
    hidden = int(trial.hparams.get("hidden_size", 32))
    weights = [[round(rng.gauss(0, 0.1), 4) for _ in range(16)] for _ in range(8)]
    state = {
        "models_state_dict": [{"layers.0.weight": weights, "layers.0.bias": [0.0] * 8}],
        "optimizers_state_dict": [{"state": {}, "param_groups": [{"lr": 0.01}]}],
        "lr_schedulers_state_dict": [{"last_epoch": steps // 100}],
        "callbacks": {},
    }
    metadata = {
        "experiment_id": experiment.id,
        "trial_id": trial.id,
        "steps_completed": steps,
        "framework": "torch",
        "format": "state-dict.pth",
    }
    const = {"name": experiment.name, "hyperparameters": trial.hparams}
    return {
        "state-dict.pth": torch_compatible_pickle(state),
        "metadata.json": json.dumps(metadata, indent=2).encode(),
        "code/model_def.py": MODEL_DEF.format(hidden=hidden).encode(),
        "code/const.yaml": yaml.safe_dump(const, sort_keys=False).encode(),
    }


def checkpoint_root(storage: StorageConfig) -> Path:
    """The shared_fs directory that holds ``<uuid>/`` checkpoint directories."""
    root = Path(storage.host_path)
    if storage.storage_path:
        root = root / storage.storage_path.strip("/")
    return root


def write_checkpoint(experiment, trial, steps, metric_values, rng) -> None:
    """Write one checkpoint's files to shared_fs, then report validation and checkpoint."""
    uuid = uuid_lib.UUID(int=rng.getrandbits(128), version=4)
    files = checkpoint_files(experiment, trial, steps, rng)
    directory = checkpoint_root(experiment.storage) / str(uuid)
    for relpath, content in files.items():
        path = directory / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    if metric_values is not None:
        services.report_validation(trial, steps, metric_values)
    services.report_checkpoint(
        trial,
        steps,
        resources={relpath: len(content) for relpath, content in files.items()},
        metadata={"framework": "torch"},
        uuid=uuid,
    )


def build_spec_example(owner, storage: StorageConfig | None = None) -> Experiment:
    """The spec's example: 2 trials, checkpoints at steps 100..500, the table's metrics."""
    config = {
        "name": SPEC_EXAMPLE,
        "description": "The GC example of the spec: 2 trials, 10 checkpoints.",
        "searcher": {"name": "single", "metric": "validation_loss", "smaller_is_better": True},
        "hyperparameters": {"learning_rate": 0.01},
    }
    experiment = services.create_experiment(owner, config)
    if storage is not None:
        experiment.storage = storage
        experiment.save(update_fields=["storage"])
    rng = random.Random(42)  # noqa: S311 - demo data, not security
    trials = {number: services.create_trial(experiment, {"hidden_size": 32}) for number in (1, 2)}
    for number, steps, metric in SPEC_TABLE:
        metrics = None if metric is None else {"validation_loss": metric}
        write_checkpoint(experiment, trials[number], steps, metrics, rng)
    return experiment


def build_training_experiment(
    owner, name, metric, smaller_is_better, trials, steps, seed, finished: bool | None = None
):
    """An experiment whose metric curves look like training: noisy, improving, plateauing.

    ``finished=True`` completes every trial and then the experiment (which runs GC, as a
    real one would); ``False`` leaves the last trial, and so the experiment, ACTIVE. The
    default (None) completes the trials and leaves the experiment's state to the caller.
    """
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    config = {
        "name": name,
        "description": f"Demo: {trials} trials of {steps} checkpoints, metric {metric}.",
        "searcher": {"name": "random", "metric": metric, "smaller_is_better": smaller_is_better},
        "hyperparameters": {"learning_rate": {"type": "log", "minval": -4, "maxval": -1}},
    }
    experiment = services.create_experiment(owner, config)
    for trial_index in range(trials):
        lr = 10 ** rng.uniform(-4, -1)
        trial = services.create_trial(
            experiment, {"learning_rate": round(lr, 6), "hidden_size": rng.choice([32, 64, 128])}
        )
        floor, speed = rng.uniform(0.05, 0.4), rng.uniform(0.02, 0.1)
        for index in range(1, steps + 1):
            step = index * 250
            progress = 1 - math.exp(-speed * index)
            if smaller_is_better:
                value = 2.3 - (2.3 - floor) * progress + rng.gauss(0, 0.03)
            else:
                value = 0.5 + (0.45 - floor / 2) * progress + rng.gauss(0, 0.01)
            metrics = {metric: round(value, 4), "epoch": index}
            # Validation every other checkpoint, as with min_validation_period > period.
            write_checkpoint(experiment, trial, step, metrics if index % 2 == 0 else None, rng)
        if finished is not False or trial_index < trials - 1:
            trial.state = Trial.State.COMPLETED
            trial.save(update_fields=["state"])
    if finished:
        services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    return experiment


DEMO_EXPERIMENTS = [
    # name, metric, smaller_is_better, trials, checkpoints per trial, seed, finished
    # resnet18 has ended (so GC has run and most rows are DELETED); bert is still training.
    ("resnet18-cifar10", "validation_loss", True, 4, 40, 7, True),
    ("bert-base-glue-sst2", "accuracy", False, 6, 25, 11, False),
]


DEMO_MODEL = "resnet18-cifar10"


def register_demo_model(owner) -> bool:
    """A registry model pinning resnet18-cifar10's two best checkpoints (v1, then the best
    as v2), unless it exists; True when created."""
    from experiments import registry
    from experiments.models import Model

    experiment = Experiment.objects.filter(name="resnet18-cifar10").first()
    if experiment is None or Model.objects.filter(name=DEMO_MODEL).exists():
        return False
    best = list(
        experiment.checkpoints.filter(
            state=CheckpointState.COMPLETED, validation_metric__isnull=False
        ).order_by("validation_metric", "steps_completed", "id")[:2]
    )
    model = registry.create_model(
        owner, DEMO_MODEL, "ResNet-18 on CIFAR-10, the version we serve.", ["vision", "demo"]
    )
    for number, checkpoint in enumerate(reversed(best), start=1):
        registry.register_version(model, checkpoint, owner, f"demo version {number}")
    return True


def load_demo(owner) -> list[str]:
    """Create the demo experiments (and registry model) that do not exist yet; return the
    names created."""
    created = []
    if not Experiment.objects.filter(name=SPEC_EXAMPLE).exists():
        build_spec_example(owner)
        created.append(SPEC_EXAMPLE)
    for name, metric, smaller, trials, steps, seed, finished in DEMO_EXPERIMENTS:
        if not Experiment.objects.filter(name=name).exists():
            build_training_experiment(owner, name, metric, smaller, trials, steps, seed, finished)
            created.append(name)
    if register_demo_model(owner):
        created.append(f"model {DEMO_MODEL}")
    return created
