#!/usr/bin/env python3
"""Train a tiny PyTorch Lightning model into ckptweb: one import and one line.

The line is the callback in ``Trainer(callbacks=[...])``: it creates the experiment (named by
``--name``) and its trial, reports what ``validation_step`` logs (``val_loss``, the searcher
metric), uploads every checkpoint the trainer writes, and ends the trial when ``fit`` ends;
the experiment ends with it and its GC policy runs (here: keep the best and the latest).

    CKPTWEB_URL=http://127.0.0.1:8000 CKPTWEB_TOKEN=... python examples/train_lightning.py

Resume a run from ckptweb's latest checkpoint with ``--resume`` (it downloads it, then
``trainer.fit(..., ckpt_path=path)``). Needs the ``lightning`` extra:
``pip install -e '.[lightning]'``.
"""

from __future__ import annotations

import argparse
import sys

import lightning.pytorch as pl
import torch

from ckptweb.integrations.lightning import CkptwebCallback

POLICY = {"save_experiment_best": 1, "save_trial_best": 0, "save_trial_latest": 1}


class Regressor(pl.LightningModule):
    """``y = 3x - 1`` by a linear layer."""

    def __init__(self, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(1, 1)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def data(seed: int) -> torch.utils.data.DataLoader:
    x = torch.rand(64, 1, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 3 * x - 1), batch_size=8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="lightning-regressor", help="experiment name")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--root", default="var/lightning", help="Lightning's default_root_dir")
    parser.add_argument("--resume", action="store_true", help="from ckptweb's latest checkpoint")
    args = parser.parse_args(argv)
    resume = CkptwebCallback.latest_checkpoint_path(args.name) if args.resume else None
    callback = CkptwebCallback(experiment=args.name, config={"policy": POLICY})  # the one line
    trainer = pl.Trainer(
        max_epochs=args.epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
        default_root_dir=args.root, callbacks=[callback],
    )  # fmt: skip
    trainer.fit(Regressor(), data(0), data(1), ckpt_path=resume)
    print(f"experiment {callback.experiment['id']} {callback.trial['experiment_state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
