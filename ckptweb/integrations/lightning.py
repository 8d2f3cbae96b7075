"""PyTorch Lightning: one callback puts a ``Trainer.fit`` run into ckptweb.

    from ckptweb.integrations.lightning import CkptwebCallback

    trainer = Trainer(callbacks=[CkptwebCallback(experiment="mnist")])

On fit start it creates the experiment and its one trial (``ckptweb.integrations.session``);
after every validation it reports the float metrics Lightning logged
(``trainer.callback_metrics``, under the names they were logged) at ``trainer.global_step``;
every checkpoint file the trainer writes (``ModelCheckpoint``'s, or ``trainer.save_checkpoint``)
is uploaded as it is written, with a ``metadata.json``; when fit ends the trial ends
COMPLETED (ERROR on an exception), which ends the experiment and runs its policy. The
callback's ``experiment``/``trial`` then hold the server's answers (``trial["gc_run"]``).

Checkpoints are caught where Lightning writes them: the strategy's ``CheckpointIO`` is
wrapped for the duration of ``fit`` (on the global-zero process, the one that writes), so
every file is uploaded once it is complete, whatever its name or directory. The searcher
metric defaults to ``val_loss``; name another with ``config={"metric": ...}``.

Resume from ckptweb's latest checkpoint of an experiment::

    path = CkptwebCallback.latest_checkpoint_path("mnist")
    trainer.fit(model, ckpt_path=path)

Works with the ``lightning`` package, or ``pytorch_lightning`` when only that is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

try:
    import lightning.pytorch as pl
except ImportError:  # the older distribution of the same framework
    import pytorch_lightning as pl

from ckptweb.client import Client
from ckptweb.client.errors import ApiError
from ckptweb.integrations.session import Run, experiment_config, find_experiment

DEFAULT_METRIC = "val_loss"
METADATA_FILE = "metadata.json"


def float_metrics(metrics: dict) -> dict[str, float]:
    """The finite scalar metrics of ``trainer.callback_metrics``, as floats."""
    floats = {}
    for name, value in metrics.items():
        if hasattr(value, "numel"):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        value = float(value)
        if value == value and abs(value) != float("inf"):
            floats[str(name)] = value
    return floats


class _UploadingCheckpointIO(pl.plugins.CheckpointIO):
    """The strategy's own CheckpointIO, and an upload of every file once it is written."""

    def __init__(self, inner, callback: CkptwebCallback):
        super().__init__()
        self.inner = inner
        self.callback = callback

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)
        self.callback.upload_file(Path(path), int(checkpoint.get("global_step", 0)), checkpoint)

    def load_checkpoint(self, path, *args, **kwargs):
        return self.inner.load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path):
        self.inner.remove_checkpoint(path)

    def teardown(self):
        self.inner.teardown()


class CkptwebCallback(pl.Callback):
    """Report a Lightning fit run to ckptweb: experiment, metrics, checkpoints, its end."""

    def __init__(self, experiment: str, config: dict | None = None, client: Client | None = None):
        super().__init__()
        self.name = experiment
        self.config = dict(config or {})
        self.experiment_config = experiment_config(self.config, DEFAULT_METRIC)
        self.client = client
        self.run: Run | None = None
        self._wrapped = None

    @property
    def experiment(self) -> dict | None:
        return self.run.experiment if self.run else None

    @property
    def trial(self) -> dict | None:
        return self.run.trial if self.run else None

    # --- hooks -----------------------------------------------------------------------------

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        self.client = self.client or Client()
        hparams = self.config.get("hparams")
        if hparams is None:  # the module's save_hyperparameters(), where they are plain values
            hparams = {
                str(name): value
                for name, value in dict(getattr(pl_module, "hparams", {}) or {}).items()
                if value is None or isinstance(value, (str, int, float, bool))
            }
        self.run = Run(self.client, self.name, self.experiment_config, hparams)
        self._wrapped = trainer.strategy.checkpoint_io
        trainer.strategy.checkpoint_io = _UploadingCheckpointIO(self._wrapped, self)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.run is None or trainer.sanity_checking:
            return
        metrics = float_metrics(trainer.callback_metrics)
        if metrics:
            self.client.report_validation(self.run.trial["id"], trainer.global_step, metrics)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._finish(trainer, None)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._finish(trainer, exception)

    # --- the work ----------------------------------------------------------------------------

    def upload_file(self, path: Path, steps_completed: int, checkpoint: dict) -> dict | None:
        """Upload one checkpoint file the trainer wrote, with a ``metadata.json``."""
        if self.run is None:
            return None
        metadata = {
            "framework": f"lightning-{pl.__version__}",
            "format": "lightning",
            "file": path.name,
            "steps_completed": steps_completed,
            "epoch": checkpoint.get("epoch"),
        }
        with tempfile.TemporaryDirectory(prefix="ckptweb-") as tmp:
            directory = Path(tmp)
            try:
                os.link(path, directory / path.name)
            except OSError:
                shutil.copyfile(path, directory / path.name)
            (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
            return self.client.upload_checkpoint(
                self.run.trial["id"], directory, steps_completed, metadata=metadata
            )

    def _finish(self, trainer, exc: BaseException | None) -> None:
        if self._wrapped is not None:
            trainer.strategy.checkpoint_io = self._wrapped
            self._wrapped = None
        if self.run is not None and not self.run.ended:
            self.run.end(exc)

    # --- resume ------------------------------------------------------------------------------

    @staticmethod
    def latest_checkpoint_path(
        experiment: str | int,
        directory: str | os.PathLike | None = None,
        client: Client | None = None,
    ) -> str:
        """Download the latest COMPLETED checkpoint of ``experiment`` (the newest experiment
        of that name, or an id) into ``directory`` (default: a new temporary directory) and
        return its Lightning file's path, for ``trainer.fit(ckpt_path=...)``."""
        client = client or Client()
        if isinstance(experiment, int):
            experiment_id = experiment
        else:
            experiment_id = find_experiment(client, experiment)["id"]
        latest = next(
            iter(client.list_checkpoints(experiment_id, "-steps_completed", "COMPLETED")), None
        )
        if latest is None:
            raise ApiError(f"experiment {experiment_id} has no COMPLETED checkpoint", 404)
        directory = directory or tempfile.mkdtemp(prefix="ckptweb-resume-")
        folder = client.download_checkpoint(latest["uuid"], directory)
        name = (latest.get("metadata") or {}).get("file")
        files = [name] if name else [p for p in latest["resources"] if p.endswith(".ckpt")]
        if not files:
            raise ApiError(f"checkpoint {latest['uuid']} holds no Lightning .ckpt file")
        return str(folder / files[0])
