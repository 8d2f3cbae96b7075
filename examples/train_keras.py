"""Keras 3 into ckptweb: one import and one line.

    pip install -e '.[keras]'
    export CKPTWEB_URL=http://127.0.0.1:8000 CKPTWEB_TOKEN=<key>
    python examples/train_keras.py

Fits a small model on random data (on the torch backend: the ``keras`` extra installs torch,
not TensorFlow). Every epoch's ``val_*`` numbers become a validation and its model a
checkpoint, the spec's ``determined-keras-model.h5``; when ``fit`` ends, the trial and the
experiment are COMPLETED and the policy below keeps the best checkpoint and the latest.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy  # noqa: E402

from ckptweb.integrations.keras import CkptwebCallback  # noqa: E402

#: Keep the trial's best checkpoint and its latest.
CONFIG = {"policy": {"save_trial_best": 1, "save_trial_latest": 1}}


def random_data(size: int, seed: int):
    """Four features; the target is whether they add up to more than 2."""
    x = numpy.random.default_rng(seed).random((size, 4), dtype=numpy.float32)
    return x, (x.sum(axis=1, keepdims=True) > 2).astype(numpy.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    options = parser.parse_args()
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.MeanSquaredError())
    x, y = random_data(256, seed=1)
    ckptweb = CkptwebCallback(experiment="mlp", config=CONFIG)  # the one line
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=options.epochs,
        validation_data=random_data(64, seed=2),
        callbacks=[ckptweb],
        verbose=2,
    )
    print(
        f"experiment {ckptweb.experiment['id']} {ckptweb.trial['experiment_state']}: "
        f"{len(ckptweb.checkpoints)} checkpoints uploaded, GC run {ckptweb.trial['gc_run']['id']}"
    )


if __name__ == "__main__":
    main()
