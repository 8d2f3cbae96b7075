#!/usr/bin/env python3
"""Train a small real PyTorch model into ckptweb, and register the best checkpoint.

A two-layer MLP (``model_def.py``) regresses ``y = sin(3x₁) + x₂²`` on synthetic data, one
trial per learning rate (Adam + StepLR). The ckptweb part is three calls: the client's
``experiment``/``trial`` blocks (the trial ends COMPLETED, or ERROR on an exception; the
experiment ends with its last trial and its policy runs), ``report_validation`` and
``save_checkpoint`` (``ckptweb.integrations.torch``), which writes Determined's PyTorch
layout and uploads it through ckptweb to the experiment's storage::

    state-dict.pth      {models_state_dict, optimizers_state_dict, lr_schedulers_state_dict,
                         callbacks}
    code/model_def.py   the model's code (``build_model()``)
    metadata.json       framework, format, steps_completed, lr, validation loss

Before the experiment ends, the checkpoint with the lowest validation loss is registered as
the next version of ``--model``, so a deployment fetches it by name (``ckpt model download
NAME``, or ``load_checkpoint("NAME:latest", model=...)``) whatever GC does later.
``--summary FILE`` writes JSON with the registered version and the best model's
predictions on a fixed probe batch (the test checks the downloaded weights give them).

    CKPTWEB_URL=http://127.0.0.1:8000 CKPTWEB_TOKEN=... \\
        python examples/train_torch.py --host-path /mnt/checkpoints --model mlp-prod

Needs the ``torch`` extra: ``pip install -e '.[torch]'`` (torch 2.13.0, CPU).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from model_def import build_model  # the sibling module (examples/ is on sys.path)
from train_and_report import grid_config, server_parser

from ckptweb.client import ApiError, Client
from ckptweb.integrations.torch import report_validation, save_checkpoint

MODEL_DEF = Path(__file__).with_name("model_def.py")
PROBE_SEED = 1234
PROBE_SIZE = 16


def make_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of ``y = sin(3 x1) + x2**2`` with a little noise."""
    x = torch.rand(n, 2, generator=generator) * 2 - 1
    y = torch.sin(3 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * torch.randn(n, generator=generator)
    return x, y


def probe_inputs() -> torch.Tensor:
    """The fixed batch whose predictions the summary records."""
    return make_data(PROBE_SIZE, torch.Generator().manual_seed(PROBE_SEED))[0]


def train_trial(api: Client, trial: dict, lr: float, args) -> list[dict]:
    """Train one trial; validate and checkpoint every ``args.every`` steps."""
    generator = torch.Generator().manual_seed(args.seed + trial["id"])
    torch.manual_seed(args.seed + trial["id"])
    train_x, train_y = make_data(512, generator)
    val_x, val_y = make_data(128, generator)
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.steps // 2))
    loss_fn = torch.nn.MSELoss()
    reported = []
    for step in range(1, args.steps + 1):
        model.train()
        batch = torch.randint(0, len(train_x), (64,), generator=generator)
        optimizer.zero_grad()
        loss_fn(model(train_x[batch]), train_y[batch]).backward()
        optimizer.step()
        scheduler.step()
        if step % args.every:
            continue
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(val_x), val_y))
            predictions = model(probe_inputs()).tolist()
        report_validation(trial, step, {"validation_loss": val_loss}, client=api)
        uuid = save_checkpoint(
            trial, step, model=model, optimizer=optimizer, lr_scheduler=scheduler,
            metadata={"lr": lr, "validation_loss": val_loss}, code=MODEL_DEF, client=api,
        )  # fmt: skip
        reported.append({"uuid": uuid, "val_loss": val_loss, "predictions": predictions})
        print(f"trial {trial['id']} step {step}: validation_loss={val_loss:.5f} {uuid}")
    return reported


def register_best(api: Client, model_name: str, best: dict, experiment: dict) -> dict:
    """Register ``best`` as the next version of ``model_name`` (created when missing)."""
    try:
        api.get_model(model_name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.create_model(model_name, description="Two-layer MLP (examples/train_torch.py).")
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
        keys = ("save_experiment_best", "save_trial_best", "save_trial_latest")
        config["checkpoint_storage"] |= dict(zip(keys, map(int, args.save.split(",")), strict=True))
    reported = []
    with api.experiment(args.name, config) as experiment:
        for lr in lrs:
            with api.trial(experiment["id"], {"lr": lr}) as trial:
                reported += train_trial(api, trial, lr, args)
        # Registered while the experiment runs: its GC then keeps the best checkpoint.
        best = min(reported, key=lambda r: r["val_loss"])
        version = register_best(api, args.model, best, experiment)
        print(f"registered {best['uuid']} as {args.model} v{version['version']}")
    # The experiment ended with its last trial, and its GC run applies the policy.
    if trial.get("gc_run"):
        api.wait_for_gc_run(trial["gc_run"]["id"], timeout=300)
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
    print(f"experiment {experiment['id']} {trial['experiment_state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
