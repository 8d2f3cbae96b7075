"""The copy-paste snippet of the checkpoint and model pages: download, load in Python.

One implementation for both pages: the checkpoint page passes the checkpoint's download
URL, the model page the model version's (``models/{name}/versions/{n}/download``).

File and directory names come from storage, i.e. from untrusted training code, and whoever
pastes the snippet runs it. Every value is therefore quoted for the language it lands in:
``shlex.quote`` for the shell lines, ``repr`` for the Python program. The program goes to
``python3`` as a quoted heredoc (``<<'EOF'``: no expansion); ``repr`` never emits a raw line
break, so no path can put an ``EOF`` line into it, and :func:`load_snippet` refuses a program
that would contain its delimiter line anyway.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

HEREDOC = "EOF"


@dataclass(frozen=True)
class ModelFormat:
    """A framework format recognised from a checkpoint's file names."""

    key: str  # pytorch | keras | savedmodel
    name: str
    path: str  # the file or directory to load, relative to the checkpoint root
    detail: str


def detect_format(paths: list[str]) -> ModelFormat | None:
    """PyTorch ``state-dict.pth``, Keras ``determined-keras-model.h5`` or a SavedModel."""
    names = {path.rsplit("/", 1)[-1]: path for path in sorted(paths, key=len)}
    if "state-dict.pth" in names:
        return ModelFormat(
            "pytorch",
            "PyTorch state dict",
            names["state-dict.pth"],
            "A dict with models_state_dict, optimizers_state_dict, "
            "lr_schedulers_state_dict and callbacks.",
        )
    if "determined-keras-model.h5" in names:
        return ModelFormat(
            "keras",
            "TensorFlow Keras model",
            names["determined-keras-model.h5"],
            "Saved with tf.keras.models.save_model (HDF5).",
        )
    if "saved_model.pb" in names:
        directory = names["saved_model.pb"].rpartition("/")[0] or "."
        return ModelFormat(
            "savedmodel", "TensorFlow SavedModel", directory, "A SavedModel directory."
        )
    return None


#: Python loaders; ``{target}`` is a Python literal (``repr``) of the path to load.
LOADERS = {
    "pytorch": (
        "import torch\n"
        "# weights_only: tensors and plain containers, never arbitrary pickled code\n"
        'state = torch.load({target}, map_location="cpu", weights_only=True)\n'
        "print(sorted(state))\n"
        'models = state["models_state_dict"]  # also optimizers_state_dict,\n'
        "# lr_schedulers_state_dict and callbacks; the model's class is in code/\n"
        "# model.load_state_dict(models[0])"
    ),
    "keras": (
        "import tensorflow as tf\nmodel = tf.keras.models.load_model({target})\nmodel.summary()"
    ),
    "savedmodel": (
        "import tensorflow as tf\n"
        "model = tf.saved_model.load({target})\n"
        "print(list(model.signatures))"
    ),
}


def load_snippet(model_format: ModelFormat, checkpoint, tar_url: str) -> str:
    """Shell lines that download the checkpoint with an API token and load it in Python."""
    directory = f"ckpt-{str(checkpoint.uuid)[:8]}"
    loader = LOADERS[model_format.key].format(target=repr(f"{directory}/{model_format.path}"))
    if HEREDOC in loader.splitlines():  # unreachable with repr; a guard, not a hope
        raise ValueError("the loader program contains its heredoc delimiter")
    shell_dir = shlex.quote(directory)
    return (
        "# CKPTWEB_TOKEN: a key from the Tokens page (/tokens/) or `ckpt login`\n"
        f'curl -fSL -H "Authorization: Token $CKPTWEB_TOKEN" \\\n'
        f"  {shlex.quote(tar_url)} -o {shlex.quote(directory + '.tar')}\n"
        f"mkdir -p {shell_dir} && tar xf {shlex.quote(directory + '.tar')} -C {shell_dir}\n"
        f"python3 - <<'{HEREDOC}'\n{loader}\n{HEREDOC}"
    )
