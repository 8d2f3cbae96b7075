"""Hugging Face Transformers into ckptweb: ``CkptwebCallback``, a ``TrainerCallback``.

One import and one line (``../shared/DESIGN.md`` "Integrations")::

    from ckptweb.integrations.transformers import CkptwebCallback

    callback = CkptwebCallback(experiment="bert-tiny")      # CKPTWEB_URL, CKPTWEB_TOKEN
    trainer = Trainer(model, args, train_dataset=..., eval_dataset=..., callbacks=[callback])
    with callback:  # optional: the trial ends ERROR at once if training raises
        trainer.train()

On the main process (``state.is_world_process_zero``; the others do nothing):

- ``on_train_begin`` creates the experiment ``experiment`` from ``config``
  (``ckptweb.integrations.session.experiment_config``: ``metric``, ``smaller_is_better``,
  ``policy``, ``storage``…), whose searcher metric defaults to ``eval_loss``, and one trial,
  whose hparams are the ``TrainingArguments``' learning rate, batch sizes, epochs and steps;
- ``on_evaluate`` reports the numbers the Trainer's evaluation logged, under the names it logs
  them (``eval_loss``, ``eval_accuracy``, ``eval_runtime``, ``epoch``…), as a validation at
  ``state.global_step``;
- ``on_save`` uploads the folder the Trainer has just written,
  ``<args.output_dir>/checkpoint-<global_step>/`` (its own files, plus a ``metadata.json``
  written into it), as a checkpoint with ``steps_completed = state.global_step``
  (``Client.upload_checkpoint``: resumable, parallel). ``callback.checkpoints`` lists them;
- ``on_train_end`` ends the trial COMPLETED: the experiment, whose only trial it is, ends
  COMPLETED and a GC run applies its policy, so ``save_total_limit`` is not needed.

**When training raises.** The Trainer has no hook for an exception, so the trial is ended
ERROR two ways, through the client's trial block (``ckptweb.client.lifecycle``: a failure to
tell the server becomes a note on the exception, never replaces it): the callback is a
context manager, and ``with callback: trainer.train()`` ends the trial ERROR as soon as the
block raises (the exception goes on); without the block, an ``atexit`` hook registered by
``on_train_begin`` ends a trial still running when the process exits (an uncaught exception,
``sys.exit``; a ``SIGKILL`` leaves it ACTIVE; ``session.Run`` registers it). Either way the
experiment ends ERROR and its policy runs.

**Resume.** ``download_latest_checkpoint(experiment_id, output_dir)`` downloads the
experiment's latest COMPLETED checkpoint (most steps) into ``output_dir/checkpoint-<N>/`` and
returns that path, for ``trainer.train(resume_from_checkpoint=path)``. The resumed run is a
new experiment (a new callback): the one it resumes from has ended.

Hyperparameter search (``trainer.hyperparameter_search``) writes its checkpoints elsewhere
(``run-<trial>/``) and is not supported.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import transformers
from transformers import TrainerCallback

from ckptweb.client import Client
from ckptweb.client.errors import ApiError
from ckptweb.integrations.session import Run, RunCallback, experiment_config

#: The searcher metric when ``config`` names none: what ``Trainer.evaluate`` logs.
DEFAULT_METRIC = "eval_loss"
#: ``TrainingArguments`` fields that become the trial's hparams.
HPARAMS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "seed",
)


class CkptwebCallback(RunCallback, TrainerCallback):
    """Report a Trainer's evaluations and upload its checkpoints to a new ckptweb experiment."""

    # --- the Trainer's events ----------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.client = self.client or Client()
        config = experiment_config(self.config, DEFAULT_METRIC)
        self.run = Run(self.client, self.experiment_name, config, training_hparams(args))
        self.experiment, self.trial = self.run.experiment, self.run.trial

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.run is None or self.run.ended:
            return
        numbers = finite_numbers(metrics or {})
        if numbers:
            self.client.report_validation(self.trial["id"], state.global_step, numbers)

    def on_save(self, args, state, control, **kwargs):
        if self.run is None or self.run.ended:
            return
        steps = state.global_step
        folder = Path(args.output_dir) / f"checkpoint-{steps}"
        metadata = {
            "framework": f"transformers-{transformers.__version__}",
            "format": "huggingface",
            "steps_completed": steps,
        }
        (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
        checkpoint = self.client.upload_checkpoint(
            self.trial["id"], folder, steps, metadata=metadata
        )
        self.checkpoints.append(checkpoint)

    def on_train_end(self, args, state, control, **kwargs):
        self._end(None)


def training_hparams(args) -> dict:
    """The trial's hparams: ``HPARAMS`` of the ``TrainingArguments`` (enums by value)."""
    hparams = {}
    for name in HPARAMS:
        value = getattr(args, name, None)
        value = getattr(value, "value", value)
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            hparams[name] = value
    return hparams


def finite_numbers(metrics: dict) -> dict:
    """The finite numbers of ``metrics`` (what a validation may hold)."""
    return {
        name: value
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def download_latest_checkpoint(
    experiment_id: int, output_dir: str | os.PathLike, client: Client | None = None
) -> Path:
    """Download the experiment's latest COMPLETED checkpoint into ``output_dir/checkpoint-<N>/``
    and return it, for ``trainer.train(resume_from_checkpoint=...)``."""
    client = client or Client()
    checkpoints = client.list_checkpoints(experiment_id, "-steps_completed", state="COMPLETED")
    latest = next(iter(checkpoints), None)
    if latest is None:
        raise ApiError(f"experiment {experiment_id} has no COMPLETED checkpoint to resume from")
    target = Path(output_dir) / f"checkpoint-{latest['steps_completed']}"
    if target.exists():
        raise FileExistsError(f"{target} exists already; move it away or pick another output_dir")
    client.download_checkpoint(latest["uuid"], output_dir).rename(target)
    return target
