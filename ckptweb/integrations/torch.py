"""Plain PyTorch: save a checkpoint in the spec's layout to ckptweb, load one back.

``save_checkpoint`` writes Determined's PyTorch layout (spec/exporting-checkpoints.rst) into
a temporary directory and uploads it (``Client.upload_checkpoint``)::

    state-dict.pth   torch.save({models_state_dict: [...], optimizers_state_dict: [...],
                                 lr_schedulers_state_dict: [...], callbacks: {}})
    code/            the training script (``sys.argv[0]``) or the files given as ``code=``
    metadata.json    framework, format, steps_completed, and the caller's ``metadata``

``load_checkpoint`` downloads one and loads its state into the objects given. Typical use,
with the client's lifecycle blocks ending the trial and the experiment::

    from ckptweb.client import Client
    from ckptweb.integrations.torch import report_validation, save_checkpoint

    api = Client()
    with api.experiment("mnist", {"searcher": {"metric": "loss"}}) as experiment:
        with api.trial(experiment["id"], {"lr": 0.1}) as trial:
            ...
            report_validation(trial, step, {"loss": loss})
            save_checkpoint(trial, step, model=model, optimizer=optimizer)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from ckptweb.client import Client
from ckptweb.client.errors import ApiError
from ckptweb.integrations.session import trial_id

STATE_FILE = "state-dict.pth"
METADATA_FILE = "metadata.json"


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _code_files(code) -> list[Path]:
    """The files that go to ``code/``: ``code`` (a path or paths; ``()`` for none), else the
    running script when it is a Python file."""
    if code is None:
        script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
        is_script = script is not None and script.suffix == ".py" and script.is_file()
        return [script] if is_script else []
    files = [Path(path) for path in _as_list(code)]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"code: {path} is not a file")
    return files


def write_checkpoint(
    directory: str | os.PathLike,
    steps_completed: int,
    *,
    model,
    optimizer=None,
    lr_scheduler=None,
    metadata: dict | None = None,
    code=None,
) -> Path:
    """Write the spec's PyTorch layout into ``directory``; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "models_state_dict": [m.state_dict() for m in _as_list(model)],
        "optimizers_state_dict": [o.state_dict() for o in _as_list(optimizer)],
        "lr_schedulers_state_dict": [s.state_dict() for s in _as_list(lr_scheduler)],
        "callbacks": {},
    }
    torch.save(state, directory / STATE_FILE)
    for path in _code_files(code):
        (directory / "code").mkdir(exist_ok=True)
        shutil.copyfile(path, directory / "code" / path.name)
    info = {
        "framework": f"torch-{torch.__version__}",
        "format": "pickle",
        "steps_completed": int(steps_completed),
        **(metadata or {}),
    }
    (directory / METADATA_FILE).write_text(json.dumps(info, indent=2))
    return directory


def save_checkpoint(
    trial,
    steps_completed: int,
    *,
    model,
    optimizer=None,
    lr_scheduler=None,
    metadata: dict | None = None,
    code=None,
    client: Client | None = None,
) -> str:
    """Upload ``model`` (a module or a list), ``optimizer``, ``lr_scheduler`` as a checkpoint
    of ``trial`` (the dict ``Client.trial()`` yields, or its id) after ``steps_completed``
    steps; ``metadata`` also becomes the checkpoint's metadata. Returns its uuid."""
    client = client or Client()
    with tempfile.TemporaryDirectory(prefix="ckptweb-") as tmp:
        directory = write_checkpoint(
            Path(tmp) / "checkpoint",
            steps_completed,
            model=model,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            metadata=metadata,
            code=code,
        )
        checkpoint = client.upload_checkpoint(
            trial_id(trial), directory, int(steps_completed), metadata=metadata or {}
        )
    return checkpoint["uuid"]


def report_validation(trial, steps_completed: int, metrics: dict, client: Client | None = None):
    """Report validation metrics (``{name: number}``) of ``trial`` (dict or id)."""
    metrics = {name: float(value) for name, value in metrics.items()}
    return (client or Client()).report_validation(trial_id(trial), int(steps_completed), metrics)


def download(ref: str, directory: str | os.PathLike, client: Client) -> Path:
    """Download the checkpoint ``ref`` names into ``directory``; returns its folder.

    ``ref``: a checkpoint uuid (or a prefix, where the server takes one),
    ``"best:<experiment id>"`` (the best by the experiment's searcher metric), or
    ``"<model name>:<version>"`` (a registered version; ``latest`` works).
    ``"<model name>@<alias>"`` is refused: this server has no model aliases yet.
    """
    ref = str(ref)
    if ref.startswith("best:"):
        experiment = ref.removeprefix("best:")
        if not experiment.isdigit():
            raise ValueError(f"{ref!r}: best: takes an experiment id, like best:12")
        best = client.best_checkpoint(int(experiment))
        return client.download_checkpoint(best["uuid"], directory)
    if "@" in ref:
        raise ValueError(
            f"{ref!r}: model aliases are not served by this ckptweb; name a version "
            "(<model name>:<version>) or a checkpoint uuid"
        )
    if ":" in ref:
        name, _, version = ref.rpartition(":")
        return client.download_model_version(name, version, directory)
    return client.download_checkpoint(ref, directory)


def load_checkpoint(
    ref: str,
    *,
    model,
    optimizer=None,
    lr_scheduler=None,
    client: Client | None = None,
    map_location="cpu",
) -> dict:
    """Load checkpoint ``ref`` (see ``download``) into ``model`` (a module or a list, in the
    order they were saved), and ``optimizer``/``lr_scheduler`` when given. Returns the
    checkpoint's ``metadata.json``."""
    client = client or Client()
    with tempfile.TemporaryDirectory(prefix="ckptweb-") as tmp:
        directory = download(ref, tmp, client)
        if not (directory / STATE_FILE).is_file():
            raise ApiError(f"{ref}: the checkpoint has no {STATE_FILE} (not a PyTorch checkpoint)")
        state = torch.load(directory / STATE_FILE, map_location=map_location, weights_only=True)
        metadata_file = directory / METADATA_FILE
        metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    for key, objects in (
        ("models_state_dict", model),
        ("optimizers_state_dict", optimizer),
        ("lr_schedulers_state_dict", lr_scheduler),
    ):
        objects = _as_list(objects)
        if len(objects) > len(state[key]):
            raise ValueError(f"{ref}: {key} holds {len(state[key])}, not {len(objects)}")
        for target, saved in zip(objects, state[key], strict=False):
            target.load_state_dict(saved)
    return metadata
