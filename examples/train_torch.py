#!/usr/bin/env python3
"""Train a small real PyTorch model, report it to ckptweb, and register the best checkpoint.

A two-layer MLP regresses ``y = sin(3x₁) + x₂²`` on synthetic data, one trial per learning
rate (Adam + StepLR). Every ``--every`` steps the trial validates and writes a checkpoint in
Determined's PyTorch layout to ``<host_path>/<uuid>/`` on the experiment's shared_fs
storage, then reports the validation and the checkpoint through the REST API::

    state-dict.pth      torch.save of {models_state_dict: [model.state_dict()],
                                       optimizers_state_dict: [optimizer.state_dict()],
                                       lr_schedulers_state_dict: [scheduler.state_dict()],
                                       callbacks: {}}
    code/model_def.py   the model's class (``build_model()``), the code that loads it
    metadata.json       framework, format, steps_completed, validation loss

At the end the experiment is COMPLETED (GC keeps what its policy says) and the checkpoint
with the lowest validation loss is registered as the next version of ``--model``, so a
deployment fetches it by name (``ckpt model download NAME``) whatever GC does later.

``--summary FILE`` writes JSON with the registered version and the best model's
predictions on a fixed probe batch, so a test can check that the downloaded weights give
identical predictions.

    CKPTWEB_URL=http://127.0.0.1:8000 CKPTWEB_TOKEN=... \\
        python examples/train_torch.py --host-path /mnt/checkpoints --model mlp-prod

Needs the ``torch`` extra: ``pip install -e '.[torch]'`` (torch 2.13.0, CPU).
"""

from __future__ import annotations

import io
import json
import sys
import types
import uuid
from pathlib import Path

import torch
from train_and_report import (  # the sibling example (examples/ is on sys.path)
    grid_config,
    server_parser,
)

from ckptweb.client import ApiError, Client, shared_fs_checkpoint_dir, write_checkpoint_files

#: Written to every checkpoint as code/model_def.py, and executed here to build the model:
#: the code that trains is the code that ships.
MODEL_DEF = '''"""A two-layer MLP for 2-d regression (examples/train_torch.py)."""

import torch
from torch import nn

HIDDEN = 32


class MLP(nn.Module):
    def __init__(self, hidden: int = HIDDEN):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def build_model() -> MLP:
    return MLP()
'''

PROBE_SEED = 1234
PROBE_SIZE = 16


def model_module() -> types.ModuleType:
    """``MODEL_DEF`` as a module (the same source the checkpoints carry)."""
    module = types.ModuleType("model_def")
    exec(compile(MODEL_DEF, "code/model_def.py", "exec"), module.__dict__)  # noqa: S102
    return module


def make_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of ``y = sin(3 x1) + x2**2`` with a little noise."""
    x = torch.rand(n, 2, generator=generator) * 2 - 1
    y = torch.sin(3 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * torch.randn(n, generator=generator)
    return x, y


def probe_inputs() -> torch.Tensor:
    """The fixed batch whose predictions the summary records."""
    return make_data(PROBE_SIZE, torch.Generator().manual_seed(PROBE_SEED))[0]


def state_bytes(model, optimizer, scheduler) -> bytes:
    """Determined's PyTorch ``state-dict.pth``: lists of state dicts, and callbacks."""
    buffer = io.BytesIO()
    torch.save(
        {
            "models_state_dict": [model.state_dict()],
            "optimizers_state_dict": [optimizer.state_dict()],
            "lr_schedulers_state_dict": [scheduler.state_dict()],
            "callbacks": {},
        },
        buffer,
    )
    return buffer.getvalue()


def checkpoint_files(model, optimizer, scheduler, steps: int, val_loss: float) -> dict:
    """The files of one checkpoint in Determined's PyTorch layout."""
    metadata = {
        "framework": f"torch-{torch.__version__}",
        "format": "pickle",
        "steps_completed": steps,
        "validation_loss": val_loss,
    }
    return {
        "state-dict.pth": state_bytes(model, optimizer, scheduler),
        "code/model_def.py": MODEL_DEF.encode(),
        "metadata.json": json.dumps(metadata, indent=2).encode(),
    }


def train_trial(api: Client, experiment: dict, trial: dict, lr: float, args) -> list[dict]:
    """Train one trial; validate and checkpoint every ``args.every`` steps.

    Returns ``{uuid, steps, val_loss, predictions}`` of every checkpoint reported.
    """
    generator = torch.Generator().manual_seed(args.seed + trial["id"])
    torch.manual_seed(args.seed + trial["id"])
    train_x, train_y = make_data(512, generator)
    val_x, val_y = make_data(128, generator)
    model = model_module().build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.steps // 2))
    loss_fn = torch.nn.MSELoss()
    reported = []
    for step in range(1, args.steps + 1):
        model.train()
        batch = torch.randint(0, len(train_x), (64,), generator=generator)
        optimizer.zero_grad()
        loss = loss_fn(model(train_x[batch]), train_y[batch])
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % args.every:
            continue
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(val_x), val_y))
            predictions = model(probe_inputs()).tolist()
        ckpt_uuid = str(uuid.uuid4())
        directory = shared_fs_checkpoint_dir(experiment, ckpt_uuid)
        files = checkpoint_files(model, optimizer, scheduler, step, val_loss)
        resources = write_checkpoint_files(directory, files)
        api.report_validation(trial["id"], step, {"validation_loss": val_loss})
        api.report_checkpoint(
            trial["id"], step, resources=resources, metadata={"lr": lr}, uuid=ckpt_uuid
        )
        reported.append(
            {"uuid": ckpt_uuid, "steps": step, "val_loss": val_loss, "predictions": predictions}
        )
        print(f"trial {trial['id']} step {step}: validation_loss={val_loss:.5f} {ckpt_uuid}")
    return reported


def register_best(api: Client, model_name: str, best: dict, experiment: dict) -> dict:
    """Register ``best`` as the next version of ``model_name`` (created when missing)."""
    try:
        api.get_model(model_name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.create_model(
            model_name, description="Two-layer MLP from examples/train_torch.py.", labels=["torch"]
        )
    comment = f"best of experiment {experiment['id']}: validation_loss={best['val_loss']:.5f}"
    return api.register_model_version(model_name, best["uuid"], comment)


def parse_args(argv=None):
    parser = server_parser(__doc__)
    parser.add_argument("--name", default="torch-mlp", help="experiment name")
    parser.add_argument("--model", default="torch-mlp", help="registry model to register into")
    parser.add_argument("--lrs", default="0.01,0.003", help="one trial per learning rate")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save",
        metavar="B,T,L",
        help="GC policy save_experiment_best,save_trial_best,save_trial_latest "
        "(default: the storage's); 0,0,0 keeps only the registered checkpoint",
    )
    parser.add_argument("--summary", type=Path, help="write the JSON summary here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # bit-for-bit reproducible predictions on CPU
    api = Client(url=args.url, token=args.token)
    lrs = [float(lr) for lr in args.lrs.split(",")]
    description = "A two-layer MLP (PyTorch), one trial per learning rate."
    config = grid_config(args.name, description, lrs, args.host_path)
    if args.save:
        best, trial_best, latest = (int(n) for n in args.save.split(","))
        config["checkpoint_storage"] |= {
            "save_experiment_best": best,
            "save_trial_best": trial_best,
            "save_trial_latest": latest,
        }
    experiment = api.create_experiment(config)
    print(f"experiment {experiment['id']}: {experiment['name']}")
    reported = []
    for lr in lrs:
        trial = api.create_trial(experiment["id"], {"lr": lr})
        reported += train_trial(api, experiment, trial, lr, args)
    best = min(reported, key=lambda r: (r["val_loss"], r["steps"]))
    # Register before completing: the experiment's GC then keeps the best checkpoint
    # whatever its policy says.
    version = register_best(api, args.model, best, experiment)
    print(f"registered {best['uuid']} as {args.model} v{version['version']}")
    result = api.set_experiment_state(experiment["id"], "COMPLETED")
    if result.get("gc_run"):
        api.wait_for_gc_run(result["gc_run"]["id"], timeout=300)
    summary = {
        "experiment_id": experiment["id"],
        "model": args.model,
        "version": version["version"],
        "checkpoint": best["uuid"],
        "validation_loss": best["val_loss"],
        "probe_seed": PROBE_SEED,
        "probe_inputs": probe_inputs().tolist(),
        "predictions": best["predictions"],
    }
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2))
    print(f"experiment {experiment['id']} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
