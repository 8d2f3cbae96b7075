"""Keras 3 into ckptweb: ``CkptwebCallback``, a ``keras.callbacks.Callback``.

One import and one line (``../shared/DESIGN.md`` "Integrations"). The ``keras`` extra installs
torch, not TensorFlow: set ``KERAS_BACKEND=torch`` before Keras is imported (Keras's own
default backend is TensorFlow, and ``import keras`` fails without it)::

    from ckptweb.integrations.keras import CkptwebCallback

    callback = CkptwebCallback(experiment="mlp")              # CKPTWEB_URL, CKPTWEB_TOKEN
    with callback:  # optional: the trial ends ERROR at once if fit raises
        model.fit(x, y, epochs=3, validation_data=(x_val, y_val), callbacks=[callback])

- ``on_train_begin`` creates the experiment ``experiment`` from ``config``
  (``ckptweb.integrations.session.experiment_config``: ``metric``, ``smaller_is_better``,
  ``policy``, ``storage``…), whose searcher metric defaults to ``val_loss``, and one
  trial, whose hparams are ``fit``'s epochs and steps per epoch and the optimizer's name and
  learning rate;
- ``on_epoch_end`` reports the epoch's validation numbers, the ``val_*`` entries of ``logs``
  under Keras's names (``val_loss``, ``val_accuracy``…; none without ``validation_data``),
  then saves the model as the spec's ``determined-keras-model.h5`` (Keras 3 writes the legacy
  HDF5 format, with h5py, on every backend; the torch backend is the one tested) beside a
  ``metadata.json``, and uploads both as a checkpoint (``callback.checkpoints`` lists them);
- ``on_train_end`` ends the trial COMPLETED: the experiment, whose only trial it is, ends
  COMPLETED and a GC run applies its policy.

**Steps.** ``steps_completed`` of the validations and checkpoints is the number of batches
trained, the optimizer's ``iterations``: it grows with every batch whatever
``steps_per_execution`` is, and goes on from where it was when a loaded model is fit again.

**When training raises.** Keras tells callbacks nothing when ``fit`` raises, so the trial is
ended ERROR two ways, through the client's trial block (``ckptweb.client.lifecycle``: a
failure to tell the server becomes a note on the exception, never replaces it): the callback
is a context manager, and ``with callback: model.fit(...)`` ends the trial ERROR as soon as
the block raises (the exception goes on); without the block, an ``atexit`` hook registered
by ``on_train_begin`` ends a trial still running when the process exits (an uncaught
exception, ``sys.exit``; a ``SIGKILL`` leaves it ACTIVE; ``session.Run`` registers it).
Either way the experiment ends ERROR and its policy runs.

**Loading.** ``keras.models.load_model(".../determined-keras-model.h5")``; a model compiled
with a loss or metric given as a string (``loss="mse"``) loads with ``compile=False`` only
(Keras 3's HDF5 reader cannot rebuild those; pass ``keras.losses.MeanSquaredError()`` to
compile with it).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import keras

from ckptweb.client import Client
from ckptweb.integrations.session import Run, RunCallback, experiment_config

#: The searcher metric when ``config`` names none: what ``fit`` logs with validation data.
DEFAULT_METRIC = "val_loss"
#: The spec's file name for a Keras checkpoint (docs/spec/exporting-checkpoints.rst).
MODEL_FILE = "determined-keras-model.h5"


class CkptwebCallback(RunCallback, keras.callbacks.Callback):
    """Report ``fit``'s validation metrics and upload the model every epoch to a new ckptweb
    experiment."""

    # --- fit's events ------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self.client = self.client or Client()
        config = experiment_config(self.config, DEFAULT_METRIC)
        self.run = Run(
            self.client, self.experiment_name, config, fit_hparams(self.params, self.model)
        )
        self.experiment, self.trial = self.run.experiment, self.run.trial

    def on_epoch_end(self, epoch, logs=None):
        if self.run is None or self.run.ended:
            return
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        metrics = {
            name: float(value)
            for name, value in (logs or {}).items()
            if name.startswith("val_") and isinstance(value, int | float) and math.isfinite(value)
        }
        if metrics:
            self.client.report_validation(self.trial["id"], steps, metrics)
        metadata = {
            "framework": f"keras-{keras.__version__}",
            "backend": keras.backend.backend(),
            "format": "h5",
            "steps_completed": steps,
            "epoch": epoch + 1,
        }
        with tempfile.TemporaryDirectory(prefix="ckptweb-keras-") as folder:
            save_h5(self.model, Path(folder) / MODEL_FILE)
            (Path(folder) / "metadata.json").write_text(json.dumps(metadata, indent=2))
            checkpoint = self.client.upload_checkpoint(
                self.trial["id"], folder, steps, metadata=metadata
            )
        self.checkpoints.append(checkpoint)

    def on_train_end(self, logs=None):
        self._end(None)


def fit_hparams(params: dict, model) -> dict:
    """The trial's hparams: ``fit``'s epochs and steps per epoch, the optimizer and its
    learning rate (when it is a number, not a schedule)."""
    hparams = {"epochs": params.get("epochs"), "steps_per_epoch": params.get("steps")}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        hparams["optimizer"] = type(optimizer).__name__
        rate = optimizer.get_config().get("learning_rate")
        if isinstance(rate, int | float):
            hparams["learning_rate"] = rate
    return {name: value for name, value in hparams.items() if value is not None}


def save_h5(model, path: Path) -> None:
    """``model.save`` to HDF5, without Keras's warning that the format is legacy (the spec
    names it)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        model.save(str(path))
    finally:
        absl.setLevel(level)
