"""``ckptweb.integrations.lightning.CkptwebCallback`` with real Lightning on CPU against the
live server: one callback creates the experiment, charts the validation metrics, uploads
every checkpoint the trainer writes, ends the trial and the experiment (the policy runs),
and the best checkpoint loads back with identical predictions; an exception ends it ERROR.

Skips when Lightning is not installed (the ``lightning`` extra), fails under
CKPTWEB_REQUIRE_SERVICES=1 (CI installs the extra through ``.ci/run``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckptweb.client import Client
from experiments.models import Checkpoint, Experiment, Trial
from tests.servers import missing_service

pytestmark = pytest.mark.django_db(transaction=True)

#: Keep the experiment's best and each trial's latest checkpoint; delete the rest.
POLICY = {"save_experiment_best": 1, "save_trial_best": 0, "save_trial_latest": 1}


@pytest.fixture
def pl():
    try:
        import lightning.pytorch as pl
        import torch
    except ImportError:
        missing_service("lightning is not installed: pip install -e '.[lightning]'")
    torch.set_num_threads(1)
    return pl


@pytest.fixture
def api(live_server, token, default_storage, monkeypatch, tmp_path):
    """The environment a training script runs in: CKPTWEB_URL and CKPTWEB_TOKEN."""
    monkeypatch.setenv("CKPTWEB_URL", live_server.url)
    monkeypatch.setenv("CKPTWEB_TOKEN", token)
    monkeypatch.setenv("CKPTWEB_CACHE_DIR", str(tmp_path / "cache"))
    return Client()


def module_class(pl, fail_at_step: int | None = None):
    import torch

    class Tiny(pl.LightningModule):
        """A linear model of y = 2x - 1 that logs val_loss and val_mae."""

        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def forward(self, x):
            return self.layer(x)

        def training_step(self, batch, batch_idx):
            if fail_at_step is not None and self.global_step == fail_at_step:
                raise RuntimeError("the training step failed")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))
            self.log("val_mae", (self(x) - y).abs().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return Tiny


def loader(seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(32, 1, generator=generator) * 2 - 1
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x - 1), batch_size=4)


def trainer(pl, tmp_path, callback, epochs=3):
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "local", save_top_k=-1)
    return pl.Trainer(
        max_epochs=epochs, limit_train_batches=4, limit_val_batches=2, accelerator="cpu",
        enable_progress_bar=False, enable_model_summary=False, logger=False,
        default_root_dir=tmp_path, callbacks=[callback, checkpoints],
    )  # fmt: skip


def predict(module):
    import torch

    module.eval()
    with torch.no_grad():
        return module(torch.linspace(-3, 3, 7).unsqueeze(1)).tolist()


def test_one_callback_reports_uploads_ends_and_the_policy_runs(pl, api, tmp_path):
    from ckptweb.integrations.lightning import CkptwebCallback

    Tiny = module_class(pl)
    pl.seed_everything(0)
    callback = CkptwebCallback(experiment="lightning-run", config={"policy": POLICY})

    trainer(pl, tmp_path, callback).fit(Tiny(), loader(0), loader(1))

    experiment = Experiment.objects.get(name="lightning-run")
    (trial,) = Trial.objects.filter(experiment=experiment)
    assert (experiment.state, trial.state) == ("COMPLETED", "COMPLETED")
    assert experiment.searcher_metric == "val_loss"
    # The metrics Lightning logged, under its names, at the global step: the trial's chart.
    validations = list(api.paginate(f"trials/{trial.pk}/validations"))
    assert sorted(v["steps_completed"] for v in validations) == [4, 8, 12]
    assert all(set(v["metrics"]) >= {"val_loss", "val_mae"} for v in validations)
    # Every checkpoint the trainer wrote was uploaded, as its own file plus metadata.json.
    checkpoints = {c.steps_completed: c for c in Checkpoint.objects.filter(trial=trial)}
    assert sorted(checkpoints) == [4, 8, 12]
    local = {p.name: p for p in (tmp_path / "local").glob("*.ckpt")}
    for steps, checkpoint in checkpoints.items():
        name = checkpoint.metadata["file"]
        assert name == f"epoch={steps // 4 - 1}-step={steps}.ckpt" and name in local
        assert checkpoint.metadata["steps_completed"] == steps
        assert checkpoint.validation_metric is not None
        if checkpoint.state == "COMPLETED":  # not yet deleted by the policy
            sizes = {name: local[name].stat().st_size, "metadata.json": pytest.approx(130, abs=40)}
            assert checkpoint.resources == sizes
    # The trial's end ended the experiment; its GC run applied the policy.
    gc_run = callback.trial["gc_run"]
    assert api.wait_for_gc_run(gc_run["id"], poll=0.1, timeout=60)["state"] == "SUCCEEDED"
    best = min(checkpoints.values(), key=lambda c: (c.validation_metric, c.steps_completed))
    kept = {best.pk, checkpoints[12].pk}
    states = {c.pk: Checkpoint.objects.get(pk=c.pk).state for c in checkpoints.values()}
    assert {pk for pk, state in states.items() if state == "COMPLETED"} == kept
    assert {pk for pk, state in states.items() if state == "DELETED"} == set(states) - kept
    assert "DELETED" in states.values()

    # The best checkpoint downloads and loads into a fresh module: identical predictions.
    found = api.best_checkpoint(experiment.pk)
    assert found["uuid"] == str(best.uuid)
    directory = api.download_checkpoint(found["uuid"], tmp_path / "download")
    metadata = json.loads((directory / "metadata.json").read_text())
    downloaded = directory / metadata["file"]
    assert downloaded.read_bytes() == local[metadata["file"]].read_bytes()
    from_ckptweb = Tiny.load_from_checkpoint(downloaded)
    from_local = Tiny.load_from_checkpoint(local[metadata["file"]])
    assert predict(from_ckptweb) == predict(from_local)

    # Resume: the latest checkpoint of the experiment, as a path for fit(ckpt_path=...).
    path = CkptwebCallback.latest_checkpoint_path("lightning-run", tmp_path / "resume")
    assert Path(path).read_bytes() == local[Path(path).name].read_bytes()
    assert Path(path).name == next(n for n in checkpoints[12].resources if n != "metadata.json")
    resumed = CkptwebCallback(experiment="lightning-run")
    trainer(pl, tmp_path / "second", resumed, epochs=4).fit(
        Tiny(), loader(0), loader(1), ckpt_path=path
    )
    assert resumed.trial["state"] == "COMPLETED"
    resumed_checkpoints = Checkpoint.objects.filter(trial_id=resumed.trial["id"])
    assert [c.steps_completed for c in resumed_checkpoints] == [16]


def test_an_exception_in_training_ends_the_trial_and_experiment_error(pl, api, tmp_path):
    from ckptweb.integrations.lightning import CkptwebCallback

    Tiny = module_class(pl, fail_at_step=2)
    callback = CkptwebCallback(experiment="lightning-fails")

    with pytest.raises(RuntimeError, match="the training step failed"):
        trainer(pl, tmp_path, callback).fit(Tiny(), loader(0), loader(1))

    experiment = Experiment.objects.get(name="lightning-fails")
    assert Trial.objects.get(experiment=experiment).state == "ERROR"
    assert experiment.state == "ERROR"
    assert callback.trial["state"] == "ERROR"


def test_checkpoints_land_on_s3(pl, api, default_storage, isolated_store, tmp_path):
    from ckptweb.integrations.lightning import CkptwebCallback

    store = isolated_store("s3")
    default_storage.is_default = False
    default_storage.save(update_fields=["is_default"])
    store.config.is_default = True  # experiments without a checkpoint_storage go to S3
    store.config.save(update_fields=["is_default"])
    callback = CkptwebCallback(experiment="lightning-s3")

    trainer(pl, tmp_path, callback, epochs=1).fit(module_class(pl)(), loader(0), loader(1))

    (checkpoint,) = Checkpoint.objects.filter(trial_id=callback.trial["id"])
    assert checkpoint.state == "COMPLETED" and checkpoint.trial.experiment.storage == store.config
    name = checkpoint.metadata["file"]
    key = store.key(checkpoint.uuid, name)
    body = store.admin.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    assert body == (tmp_path / "local" / name).read_bytes()
    assert callback.trial["state"] == "COMPLETED"
