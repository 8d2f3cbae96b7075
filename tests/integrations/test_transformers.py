"""ckptweb.integrations.transformers with Hugging Face's real Trainer on CPU, against the live
server: a tiny BERT built from a config (nothing from the hub), a few steps on random tokens.

The run becomes an experiment whose evaluations are validations and whose ``checkpoint-N/``
folders are COMPLETED checkpoints (on shared_fs; test_keras.py covers S3 too); the trial and
experiment end COMPLETED and the policy runs; the best checkpoint downloads, loads with
``from_pretrained`` and predicts exactly what the model predicted when it was saved;
training resumes from the latest one; an exception ends the trial ERROR. The README's
example runs as it is.

Skips when transformers is not installed (the ``transformers`` extra), fails under
CKPTWEB_REQUIRE_SERVICES=1 (CI installs the extra through ``.ci/run``).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers reads it: nothing from the internet
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import runpy  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from ckptweb.client import Client  # noqa: E402
from experiments.models import Checkpoint, Experiment, Trial, Validation  # noqa: E402
from storage.models import StorageConfig  # noqa: E402
from tests import REPO  # noqa: E402
from tests.servers import missing_service  # noqa: E402

try:
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )

    from ckptweb.integrations.transformers import CkptwebCallback, download_latest_checkpoint
except ImportError as exc:
    MISSING = f"transformers is not installed ({exc}): pip install -e '.[transformers]'"
    TrainerCallback = object
else:
    MISSING = None

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = REPO / "examples" / "train_transformers.py"
#: Keep the best checkpoint and the latest one.
POLICY = {"save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1}
TRAINER_FILES = {"config.json", "model.safetensors", "optimizer.pt", "scheduler.pt"}


@pytest.fixture(autouse=True)
def _transformers(tmp_path, monkeypatch):
    if MISSING:
        missing_service(MISSING)
    monkeypatch.setenv("CKPTWEB_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)


@pytest.fixture
def client(live_server, token):
    return Client(url=live_server.url, token=token)


@pytest.fixture(params=["shared_fs", "s3"])
def store(isolated_store, request):
    """The default storage of the test: shared_fs (uploads through ckptweb) and S3 (moto,
    presigned URLs)."""
    store = isolated_store(request.param)
    StorageConfig.objects.filter(pk=store.config.pk).update(is_default=True)
    return store


class Tokens:
    """``size`` random sequences of 8 tokens, labelled by whether the first token is even."""

    def __init__(self, size: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randint(0, 50, (size, 8), generator=generator)
        self.labels = (self.inputs[:, 0] % 2 == 0).long()

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return {"input_ids": self.inputs[index], "labels": self.labels[index]}


def tiny_bert():
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config)


class Probe(TrainerCallback):
    """The model's logits on ``probe_inputs()`` each time the Trainer saves, by step."""

    def __init__(self):
        self.logits = {}

    def on_save(self, args, state, control, model=None, **kwargs):
        self.logits[state.global_step] = predict(model, probe_inputs())


class FailAt(TrainerCallback):
    """Training fails after step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError(f"the GPU caught fire at step {self.step}")


def probe_inputs():
    return Tokens(4, seed=99).inputs


def predict(model, inputs):
    training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=inputs).logits.tolist()
    model.train(training)
    return logits


def trainer(output_dir: Path, callbacks, max_steps=6, model=None):
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        save_steps=2,
        eval_strategy="steps",
        eval_steps=2,
        logging_steps=1,
        learning_rate=0.05,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
        save_total_limit=None,
        disable_tqdm=True,
    )
    return Trainer(
        model=model or tiny_bert(),
        args=args,
        train_dataset=Tokens(32, seed=1),
        eval_dataset=Tokens(8, seed=2),
        callbacks=callbacks,
    )


def local_files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")}


def test_a_run_reports_uploads_ends_and_its_best_checkpoint_predicts_the_same(
    client, store, tmp_path
):
    callback = CkptwebCallback(experiment="bert-tiny", config={"policy": POLICY}, client=client)
    probe = Probe()
    run = trainer(tmp_path / "out", [callback, probe])

    run.train()

    # The experiment and its one trial, ended COMPLETED, hparams from TrainingArguments.
    experiment = Experiment.objects.get(pk=callback.experiment["id"])
    assert (experiment.name, experiment.searcher_metric, experiment.state) == (
        "bert-tiny",
        "eval_loss",
        "COMPLETED",
    )
    assert experiment.storage_id == store.config.pk
    trial = Trial.objects.get(experiment=experiment)
    assert trial.state == "COMPLETED" and callback.trial["state"] == "COMPLETED"
    assert trial.hparams["learning_rate"] == 0.05
    assert trial.hparams["per_device_train_batch_size"] == 4
    assert (trial.hparams["max_steps"], trial.hparams["lr_scheduler_type"]) == (6, "linear")

    # Each evaluation is a validation under the Trainer's names, at the Trainer's step.
    logged = {e["step"]: e for e in run.state.log_history if "eval_loss" in e}
    validations = {v.steps_completed: v.metrics for v in Validation.objects.filter(trial=trial)}
    assert sorted(validations) == sorted(logged) == [2, 4, 6]
    for steps, metrics in validations.items():
        assert metrics["eval_loss"] == logged[steps]["eval_loss"]
        assert set(metrics) >= {"eval_loss", "eval_runtime", "epoch"}

    # Every checkpoint-N/ folder was uploaded whole (plus metadata.json), with its metric.
    uploaded = {c["steps_completed"]: c for c in callback.checkpoints}
    assert sorted(uploaded) == [2, 4, 6]
    for steps, checkpoint in uploaded.items():
        assert checkpoint["state"] == "COMPLETED"
        resources = checkpoint["resources"]
        assert resources == local_files(tmp_path / "out" / f"checkpoint-{steps}")
        assert set(resources) >= TRAINER_FILES | {"metadata.json", "trainer_state.json"}
        assert checkpoint["metadata"]["steps_completed"] == steps
        assert checkpoint["metadata"]["format"] == "huggingface"
    rows = {c.steps_completed: c for c in Checkpoint.objects.filter(trial=trial)}
    assert {s: str(row.uuid) for s, row in rows.items()} == {
        s: c["uuid"] for s, c in uploaded.items()
    }
    assert {s: row.validation_metric for s, row in rows.items()} == {
        s: logged[s]["eval_loss"] for s in rows
    }

    # The experiment's end ran its policy: the best and the latest are left, on storage too.
    gc_run = client.wait_for_gc_run(callback.trial["gc_run"]["id"], poll=0.1, timeout=60)
    assert gc_run["state"] == "SUCCEEDED"
    best = min(rows, key=lambda steps: (logged[steps]["eval_loss"], -steps))
    kept = {best, 6}
    states = {steps: Checkpoint.objects.get(pk=row.pk).state for steps, row in rows.items()}
    assert states == {s: "COMPLETED" if s in kept else "DELETED" for s in rows}
    assert {uuid for uuid, _ in store.listing()} == {str(rows[s].uuid) for s in kept}

    # The best checkpoint downloads, loads, and predicts what the model did when saved.
    assert client.best_checkpoint(experiment.pk)["uuid"] == str(rows[best].uuid)
    downloaded = client.download_checkpoint(str(rows[best].uuid), tmp_path / "download")
    loaded = BertForSequenceClassification.from_pretrained(downloaded, local_files_only=True)
    assert predict(loaded, probe_inputs()) == probe.logits[best]

    # Resumed from ckptweb's latest checkpoint: the Trainer goes on at step 6, a new run.
    resume_dir = tmp_path / "resume"
    path = download_latest_checkpoint(experiment.pk, resume_dir, client=client)
    assert path == resume_dir / "checkpoint-6"
    assert local_files(path) == uploaded[6]["resources"]
    again = CkptwebCallback(experiment="bert-tiny-resumed", client=client)
    resumed = trainer(resume_dir, [again], max_steps=8)

    resumed.train(resume_from_checkpoint=str(path))

    assert resumed.state.global_step == 8
    steps = Checkpoint.objects.filter(experiment_id=again.experiment["id"])
    assert sorted(steps.values_list("steps_completed", "state")) == [(8, "COMPLETED")]
    assert Experiment.objects.get(pk=again.experiment["id"]).state == "COMPLETED"


def test_an_exception_in_training_ends_the_trial_and_experiment_error(
    client, default_storage, tmp_path
):
    callback = CkptwebCallback(experiment="bert-fails", client=client)
    run = trainer(tmp_path / "out", [callback, FailAt(3)])

    with pytest.raises(RuntimeError, match="caught fire") as raised, callback:
        run.train()

    assert not getattr(raised.value, "__notes__", None)  # the server was told
    trial = Trial.objects.get(pk=callback.trial["id"])
    assert trial.state == "ERROR" and callback.trial["state"] == "ERROR"
    assert trial.experiment.state == "ERROR"
    assert list(trial.checkpoints.values_list("steps_completed", "state")) == [(2, "COMPLETED")]


def test_without_the_block_the_process_exit_ends_a_failed_run_error(
    client, default_storage, tmp_path, monkeypatch
):
    import ckptweb.integrations.session as module

    exit_hooks = []
    monkeypatch.setattr(module.atexit, "register", exit_hooks.append)
    callback = CkptwebCallback(experiment="bert-fails", client=client)
    run = trainer(tmp_path / "out", [callback, FailAt(1)])

    with pytest.raises(RuntimeError, match="caught fire"):
        run.train()
    assert Trial.objects.get(pk=callback.trial["id"]).state == "ACTIVE"  # nothing told it yet

    (hook,) = exit_hooks
    hook()  # what the interpreter does on its way out

    trial = Trial.objects.get(pk=callback.trial["id"])
    assert (trial.state, trial.experiment.state) == ("ERROR", "ERROR")


def test_only_the_main_process_reports(client, default_storage, tmp_path):
    callback = CkptwebCallback(experiment="bert-rank-1", client=client)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    state = TrainerState(global_step=2, is_world_process_zero=False)
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "model.safetensors").write_bytes(b"shard")

    for event in ("on_train_begin", "on_evaluate", "on_save", "on_train_end"):
        getattr(callback, event)(args, state, TrainerControl(), metrics={"eval_loss": 0.5})

    assert callback.experiment is None and callback.checkpoints == []
    assert not Experiment.objects.exists()
    assert not (tmp_path / "checkpoint-2" / "metadata.json").exists()


def test_the_example_runs_offline(live_server, token, default_storage, tmp_path, monkeypatch):
    monkeypatch.setenv("CKPTWEB_URL", live_server.url)
    monkeypatch.setenv("CKPTWEB_TOKEN", token)
    monkeypatch.setattr(
        sys, "argv", [str(EXAMPLE), "--output-dir", str(tmp_path / "out"), "--steps", "4"]
    )

    runpy.run_path(str(EXAMPLE), run_name="__main__")

    experiment = Experiment.objects.get(name="bert-tiny")
    assert experiment.state == "COMPLETED"
    assert Trial.objects.get(experiment=experiment).state == "COMPLETED"
    assert Checkpoint.objects.filter(experiment=experiment, state="COMPLETED").exists()
    assert Validation.objects.filter(trial__experiment=experiment).exists()
