"""ckptweb.integrations.keras with real Keras 3 (torch backend, CPU) against the live server: a
tiny Sequential model fit on random data for three epochs with validation data.

Each epoch's ``val_*`` numbers become a validation and its ``determined-keras-model.h5`` (the
spec's file) a COMPLETED checkpoint, on shared_fs and on S3 (moto); the trial and experiment
end COMPLETED and the policy runs; the best checkpoint downloads and its model predicts
exactly what the model predicted when it was saved; an exception ends the trial ERROR. The
README's example runs as it is.

Skips when Keras is not installed (the ``keras`` extra), fails under
CKPTWEB_REQUIRE_SERVICES=1 (CI installs the extra through ``.ci/run``).
"""

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: never TensorFlow

import runpy  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from ckptweb.client import Client  # noqa: E402
from experiments.models import Checkpoint, Experiment, Trial, Validation  # noqa: E402
from storage.models import StorageConfig  # noqa: E402
from tests import REPO  # noqa: E402
from tests.servers import missing_service  # noqa: E402

try:
    import h5py  # noqa: F401 - Keras needs it to write .h5
    import keras
    import numpy

    from ckptweb.integrations.keras import MODEL_FILE, CkptwebCallback
except ImportError as exc:
    MISSING = f"keras is not installed ({exc}): pip install -e '.[keras]'"
    Callback = object
else:
    MISSING = None
    Callback = keras.callbacks.Callback

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Keras's torch backend converts tensors with numpy's older __array__ protocol.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

EXAMPLE = REPO / "examples" / "train_keras.py"
#: Keep the best checkpoint and the latest one.
POLICY = {"save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1}
BATCHES_PER_EPOCH = 4


@pytest.fixture(autouse=True)
def _keras(tmp_path, monkeypatch):
    if MISSING:
        missing_service(MISSING)
    monkeypatch.setenv("CKPTWEB_CACHE_DIR", str(tmp_path / "cache"))
    keras.utils.set_random_seed(0)


@pytest.fixture
def client(live_server, token):
    return Client(url=live_server.url, token=token)


@pytest.fixture(params=["shared_fs", "s3"])
def store(request, isolated_store):
    """The default storage of the test: a shared_fs directory or an S3 bucket (moto)."""
    store = isolated_store(request.param)
    StorageConfig.objects.filter(pk=store.config.pk).update(is_default=True)
    return store


def data(size: int, seed: int):
    generator = numpy.random.default_rng(seed)
    x = generator.random((size, 4), dtype=numpy.float32)
    return x, (x.sum(axis=1, keepdims=True) > 2).astype(numpy.float32)


PROBE = data(5, seed=99)[0] if not MISSING else None


def tiny_model():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.MeanSquaredError())
    return model


class Probe(Callback):
    """The model's predictions on ``PROBE`` after every epoch, by epoch."""

    def __init__(self):
        super().__init__()
        self.predictions = {}

    def on_epoch_end(self, epoch, logs=None):
        self.predictions[epoch + 1] = self.model.predict(PROBE, verbose=0).tolist()


class FailAt(Callback):
    """``fit`` fails in epoch ``epoch`` (1-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise RuntimeError(f"out of memory in epoch {self.epoch}")


def fit(model, callbacks, epochs=3):
    x, y = data(BATCHES_PER_EPOCH * 8, seed=1)
    return model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        validation_data=data(8, seed=2),
        callbacks=callbacks,
        verbose=0,
    )


def test_a_fit_reports_uploads_ends_and_its_best_checkpoint_predicts_the_same(
    client, store, tmp_path
):
    callback = CkptwebCallback(experiment="mlp", config={"policy": POLICY}, client=client)
    probe = Probe()

    history = fit(tiny_model(), [callback, probe])

    # The experiment and its one trial, ended COMPLETED; hparams from fit and the optimizer.
    experiment = Experiment.objects.get(pk=callback.experiment["id"])
    assert (experiment.name, experiment.searcher_metric, experiment.state) == (
        "mlp",
        "val_loss",
        "COMPLETED",
    )
    assert experiment.storage_id == store.config.pk
    trial = Trial.objects.get(experiment=experiment)
    assert trial.state == "COMPLETED" and callback.trial["state"] == "COMPLETED"
    assert trial.hparams == {
        "epochs": 3,
        "steps_per_epoch": BATCHES_PER_EPOCH,
        "optimizer": "Adam",
        "learning_rate": pytest.approx(0.05),
    }

    # Each epoch's val_* numbers, under Keras's names, at the batches trained so far.
    steps = [BATCHES_PER_EPOCH * epoch for epoch in (1, 2, 3)]
    val_loss = dict(zip(steps, history.history["val_loss"], strict=True))
    validations = {v.steps_completed: v.metrics for v in Validation.objects.filter(trial=trial)}
    assert validations == {s: {"val_loss": pytest.approx(val_loss[s])} for s in steps}

    # Every epoch's model was uploaded as the spec's .h5 file plus metadata.json.
    uploaded = {c["steps_completed"]: c for c in callback.checkpoints}
    assert sorted(uploaded) == steps
    for epoch, (s, checkpoint) in enumerate(sorted(uploaded.items()), start=1):
        assert checkpoint["state"] == "COMPLETED"
        assert set(checkpoint["resources"]) == {MODEL_FILE, "metadata.json"}
        assert checkpoint["metadata"]["steps_completed"] == s
        assert (checkpoint["metadata"]["epoch"], checkpoint["metadata"]["format"]) == (epoch, "h5")
    rows = {c.steps_completed: c for c in Checkpoint.objects.filter(trial=trial)}
    assert {s: str(row.uuid) for s, row in rows.items()} == {
        s: c["uuid"] for s, c in uploaded.items()
    }
    assert {s: row.validation_metric for s, row in rows.items()} == pytest.approx(val_loss)

    # The experiment's end ran its policy: the best and the latest are left, on storage too.
    gc_run = client.wait_for_gc_run(callback.trial["gc_run"]["id"], poll=0.1, timeout=60)
    assert gc_run["state"] == "SUCCEEDED"
    best = min(steps, key=lambda s: (rows[s].validation_metric, -s))
    kept = {best, steps[-1]}
    states = {s: Checkpoint.objects.get(pk=row.pk).state for s, row in rows.items()}
    assert states == {s: "COMPLETED" if s in kept else "DELETED" for s in steps}
    assert {uuid for uuid, _ in store.listing()} == {str(rows[s].uuid) for s in kept}

    # The best checkpoint downloads; its model predicts what the model did at that epoch.
    assert client.best_checkpoint(experiment.pk)["uuid"] == str(rows[best].uuid)
    downloaded = client.download_checkpoint(str(rows[best].uuid), tmp_path / "download")
    loaded = keras.models.load_model(downloaded / MODEL_FILE)
    assert loaded.predict(PROBE, verbose=0).tolist() == probe.predictions[best // BATCHES_PER_EPOCH]


def test_an_exception_in_fit_ends_the_trial_and_experiment_error(client, default_storage):
    callback = CkptwebCallback(experiment="mlp-fails", client=client)

    with pytest.raises(RuntimeError, match="out of memory") as raised, callback:
        fit(tiny_model(), [callback, FailAt(2)])

    assert not getattr(raised.value, "__notes__", None)  # the server was told
    trial = Trial.objects.get(pk=callback.trial["id"])
    assert trial.state == "ERROR" and callback.trial["state"] == "ERROR"
    assert trial.experiment.state == "ERROR"
    assert list(trial.checkpoints.values_list("steps_completed", "state")) == [
        (BATCHES_PER_EPOCH, "COMPLETED")
    ]


def test_without_the_block_the_process_exit_ends_a_failed_fit_error(
    client, default_storage, monkeypatch
):
    import ckptweb.integrations.session as module

    exit_hooks = []
    monkeypatch.setattr(module.atexit, "register", exit_hooks.append)
    callback = CkptwebCallback(experiment="mlp-fails", client=client)

    with pytest.raises(RuntimeError, match="out of memory"):
        fit(tiny_model(), [callback, FailAt(1)])
    assert Trial.objects.get(pk=callback.trial["id"]).state == "ACTIVE"  # nothing told it yet

    (hook,) = exit_hooks
    hook()  # what the interpreter does on its way out

    trial = Trial.objects.get(pk=callback.trial["id"])
    assert (trial.state, trial.experiment.state) == ("ERROR", "ERROR")


def test_the_example_runs_offline(live_server, token, default_storage, monkeypatch):
    monkeypatch.setenv("CKPTWEB_URL", live_server.url)
    monkeypatch.setenv("CKPTWEB_TOKEN", token)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--epochs", "2"])

    runpy.run_path(str(EXAMPLE), run_name="__main__")

    experiment = Experiment.objects.get(name="mlp")
    assert experiment.state == "COMPLETED"
    assert Trial.objects.get(experiment=experiment).state == "COMPLETED"
    assert Checkpoint.objects.filter(experiment=experiment, state="COMPLETED").exists()
    assert Validation.objects.filter(trial__experiment=experiment).count() == 2
