"""What the checkpoint and model pages offer for copying: the detected framework format
and a shell snippet that downloads the archive with an API token and loads it in Python.

One implementation for both pages: the checkpoint page passes the checkpoint's download
URL, the model page the model version's (``models/{name}/versions/{n}/download``).
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.models import Checkpoint


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


LOADERS = {
    "pytorch": (
        "import torch\n"
        "# weights_only: tensors and plain containers, never arbitrary pickled code\n"
        'state = torch.load("{dir}/{path}", map_location="cpu", weights_only=True)\n'
        "print(sorted(state))\n"
        'models = state["models_state_dict"]  # also optimizers_state_dict,\n'
        "# lr_schedulers_state_dict and callbacks; the model's class is in code/\n"
        "# model.load_state_dict(models[0])"
    ),
    "keras": (
        "import tensorflow as tf\n"
        'model = tf.keras.models.load_model("{dir}/{path}")\n'
        "model.summary()"
    ),
    "savedmodel": (
        "import tensorflow as tf\n"
        'model = tf.saved_model.load("{dir}/{path}")\n'
        "print(list(model.signatures))"
    ),
}


def load_snippet(model_format: ModelFormat, checkpoint: Checkpoint, tar_url: str) -> str:
    """Shell lines that download the checkpoint with an API token and load it in Python."""
    directory = f"ckpt-{str(checkpoint.uuid)[:8]}"
    loader = LOADERS[model_format.key].format(dir=directory, path=model_format.path)
    return (
        "# A token: python manage.py drf_create_token <username>\n"
        f'curl -fSL -H "Authorization: Token $CKPTWEB_TOKEN" \\\n  "{tar_url}" -o {directory}.tar\n'
        f"mkdir -p {directory} && tar xf {directory}.tar -C {directory}\n"
        f"python3 - <<'EOF'\n{loader}\nEOF"
    )
