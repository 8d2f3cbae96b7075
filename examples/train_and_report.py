#!/usr/bin/env python3
"""Train a toy model and report it to ckptweb, like a Determined PyTorch trial would.

Pure Python, no ML framework: a linear model ``y = w·x + b`` fitted by SGD. Each trial
(one learning rate) validates and checkpoints every ``--every`` steps. A checkpoint is a
directory ``<host_path>/<uuid>/`` on the experiment's shared_fs storage, in the spec's
PyTorch layout::

    state-dict.pth      pickle of {models_state_dict, optimizers_state_dict,
                                   lr_schedulers_state_dict, callbacks}
    metadata.json
    code/model_def.py
    code/const.yaml

The files are written first; each trial's validations and checkpoints are then reported
in batches (``Client.report_validations`` and ``Client.report_checkpoints``). Each trial
runs in a ``Client.trial`` block (COMPLETED at its end, ERROR if training raises) inside a
``Client.experiment`` block: when the last trial ends, the server ends the experiment and
GC applies its policy (0/1/1 by default: each trial's best and latest checkpoints stay).
The ``--host-path`` must be a shared_fs storage an admin has configured in ckptweb (only
staff may add storage locations).

    CKPTWEB_URL=http://127.0.0.1:8000 CKPTWEB_TOKEN=... \\
        python examples/train_and_report.py --host-path /mnt/checkpoints
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import sys
import uuid
from pathlib import Path

from ckptweb.client import Client, shared_fs_checkpoint_dir, write_checkpoint_files

MODEL_DEF = '''"""A linear model y = w * x + b."""


class LinearModel:
    def __init__(self, w=0.0, b=0.0):
        self.w, self.b = w, b

    def __call__(self, x):
        return self.w * x + self.b

    def state_dict(self):
        return {"w": self.w, "b": self.b}
'''


class LinearModel:
    """The toy model: ``y = w * x + b``."""

    def __init__(self, w: float = 0.0, b: float = 0.0):
        self.w, self.b = w, b

    def __call__(self, x: float) -> float:
        return self.w * x + self.b

    def state_dict(self) -> dict:
        return {"w": self.w, "b": self.b}


def make_data(n: int, rng: random.Random) -> list[tuple[float, float]]:
    """Points on y = 3x + 1 with a little noise."""
    points = []
    for _ in range(n):
        x = rng.uniform(-1, 1)
        points.append((x, 3 * x + 1 + rng.gauss(0, 0.1)))
    return points


def mse(model: LinearModel, data) -> float:
    return sum((model(x) - y) ** 2 for x, y in data) / len(data)


def sgd_step(model: LinearModel, batch, lr: float) -> None:
    grad_w = sum(2 * (model(x) - y) * x for x, y in batch) / len(batch)
    grad_b = sum(2 * (model(x) - y) for x, y in batch) / len(batch)
    model.w -= lr * grad_w
    model.b -= lr * grad_b


def const_yaml(config: dict, hparams: dict) -> str:
    """The experiment config with this trial's hyperparameters (JSON is valid YAML)."""
    return json.dumps({**config, "hyperparameters": hparams}, indent=2) + "\n"


def checkpoint_files(model, lr, steps, config, hparams, val_loss) -> dict[str, bytes]:
    """The spec's PyTorch layout for one checkpoint."""
    state = {
        "models_state_dict": [model.state_dict()],
        "optimizers_state_dict": [{"lr": lr, "momentum": 0.0}],
        "lr_schedulers_state_dict": [],
        "callbacks": {},
    }
    metadata = {"framework": "toy-linear", "steps_completed": steps, "validation_loss": val_loss}
    return {
        "state-dict.pth": pickle.dumps(state),
        "metadata.json": json.dumps(metadata, indent=2).encode(),
        "code/model_def.py": MODEL_DEF.encode(),
        "code/const.yaml": const_yaml(config, hparams).encode(),
    }


def train_trial(api, experiment, trial, lr, args, rng) -> list[dict]:
    """Train one trial; validate and checkpoint every ``args.every`` steps.

    The files are written as training goes; the validations and checkpoints are reported
    at the end of the trial in two batch calls (up to 1,000 reports per request).
    """
    model = LinearModel()
    train, validation = make_data(200, rng), make_data(50, rng)
    validations, checkpoints = [], []
    for step in range(1, args.steps + 1):
        sgd_step(model, rng.sample(train, 16), lr)
        if step % args.every:
            continue
        val_loss = mse(model, validation)
        ckpt_uuid = str(uuid.uuid4())
        directory = shared_fs_checkpoint_dir(experiment, ckpt_uuid)
        files = checkpoint_files(model, lr, step, experiment["config"], trial["hparams"], val_loss)
        resources = write_checkpoint_files(directory, files)
        validations.append({"steps_completed": step, "metrics": {"validation_loss": val_loss}})
        checkpoints.append(
            {
                "steps_completed": step,
                "resources": resources,
                "metadata": {"lr": lr},
                "uuid": ckpt_uuid,
            }
        )
        print(f"trial {trial['id']} step {step}: validation_loss={val_loss:.4f} {ckpt_uuid}")
    api.report_validations(trial["id"], validations)
    return api.report_checkpoints(trial["id"], checkpoints)


def server_parser(doc: str) -> argparse.ArgumentParser:
    """The options every example takes: the server, its token, the shared_fs directory."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--url", help="default: $CKPTWEB_URL")
    parser.add_argument("--token", help="default: $CKPTWEB_TOKEN")
    parser.add_argument(
        "--host-path",
        default=os.environ.get("CKPTWEB_CHECKPOINT_DIR", "var/checkpoints"),
        help="shared_fs directory for checkpoints (default: $CKPTWEB_CHECKPOINT_DIR)",
    )
    return parser


def parse_args(argv=None):
    parser = server_parser(__doc__)
    parser.add_argument("--name", default="toy-linear")
    parser.add_argument("--lrs", default="0.3,0.05", help="one trial per learning rate")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def grid_config(name: str, description: str, lrs: list[float], host_path: str) -> dict:
    """The experiment config of a grid over learning rates, checkpoints on shared_fs."""
    return {
        "name": name,
        "description": description,
        "searcher": {"name": "grid", "metric": "validation_loss", "smaller_is_better": True},
        "hyperparameters": {"lr": {"type": "categorical", "vals": lrs}},
        "checkpoint_storage": {"type": "shared_fs", "host_path": str(Path(host_path).resolve())},
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    api = Client(url=args.url, token=args.token)
    lrs = [float(lr) for lr in args.lrs.split(",")]
    description = "Linear regression by SGD, one trial per learning rate."
    config = grid_config(args.name, description, lrs, args.host_path)
    with api.experiment(args.name, config) as experiment:
        print(f"experiment {experiment['id']}: {experiment['name']}")
        for lr in lrs:
            with api.trial(experiment["id"], {"lr": lr}) as trial:
                train_trial(api, experiment, trial, lr, args, rng)
    # The last trial's end ended the experiment on the server, which started GC.
    print(f"experiment {experiment['id']} {trial['experiment_state']}")
    if trial["gc_run"]:
        run = api.wait_for_gc_run(trial["gc_run"]["id"], timeout=300)
        print(f"GC run {run['id']} {run['state']}: deleted {run['deleted']} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
