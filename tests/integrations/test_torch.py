"""``ckptweb.integrations.torch`` with real PyTorch on CPU against the live server:
``save_checkpoint`` uploads the spec's layout to shared_fs and to S3 (moto),
``load_checkpoint`` brings it back by uuid, ``best:<experiment>`` and model version
with identical predictions.

Skips when torch is not installed (the ``torch`` extra), fails under
CKPTWEB_REQUIRE_SERVICES=1 (CI installs the extra through ``.ci/run``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckptweb.client import Client
from experiments import services
from experiments.models import Checkpoint, Experiment
from tests import factories
from tests.servers import missing_service
from tests.spec import PYTORCH_STATE_KEYS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def torch():
    try:
        import torch
    except ImportError:
        missing_service("torch is not installed: pip install -e '.[torch]' (torch==2.13.0 CPU)")
    torch.set_num_threads(1)
    return torch


@pytest.fixture
def api(live_server, token, monkeypatch, tmp_path):
    """The environment a training script runs in: CKPTWEB_URL and CKPTWEB_TOKEN."""
    monkeypatch.setenv("CKPTWEB_URL", live_server.url)
    monkeypatch.setenv("CKPTWEB_TOKEN", token)
    monkeypatch.setenv("CKPTWEB_CACHE_DIR", str(tmp_path / "cache"))
    return Client()


def train(torch, steps: int, seed: int = 0):
    """A tiny linear model, Adam and StepLR, trained ``steps`` steps on y = 2x - 1."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), 2 * x - 1)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def predict(torch, model):
    with torch.no_grad():
        return model(torch.linspace(-3, 3, 7).unsqueeze(1)).tolist()


def test_save_to_shared_fs_and_load_by_uuid_best_and_version(torch, api, default_storage, tmp_path):
    from ckptweb.integrations.torch import load_checkpoint, report_validation, save_checkpoint

    script = tmp_path / "train.py"
    script.write_text("print('the training script')\n")
    saved = {}
    config = {"searcher": {"metric": "loss"}}
    with (
        api.experiment("torch-fs", config) as experiment,
        api.trial(experiment["id"], {"lr": 0.1}) as trial,
    ):
        for steps, loss in ((2, 0.5), (4, 0.1), (6, 0.3)):  # the best is at step 4
            model, optimizer, scheduler = train(torch, steps)
            report_validation(trial, steps, {"loss": loss})
            uuid = save_checkpoint(
                trial, steps, model=model, optimizer=optimizer, lr_scheduler=scheduler,
                metadata={"loss": loss}, code=script,
            )  # fmt: skip
            saved[uuid] = (steps, predict(torch, model), optimizer.state_dict())

    assert trial["state"] == "COMPLETED"
    assert Experiment.objects.get(pk=experiment["id"]).state == "COMPLETED"
    rows = {str(c.uuid): c for c in Checkpoint.objects.filter(experiment_id=experiment["id"])}
    assert set(rows) == set(saved)
    best_uuid = next(u for u, (steps, *_) in saved.items() if steps == 4)
    row = rows[best_uuid]
    assert row.state == "COMPLETED" and row.metadata == {"loss": 0.1}
    assert set(row.resources) == {"state-dict.pth", "code/train.py", "metadata.json"}
    directory = Path(default_storage.host_path) / best_uuid
    state = torch.load(directory / "state-dict.pth", weights_only=True)
    assert set(state) == PYTORCH_STATE_KEYS
    assert len(state["models_state_dict"]) == len(state["lr_schedulers_state_dict"]) == 1
    assert (directory / "code" / "train.py").read_text() == script.read_text()
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata == {
        "framework": f"torch-{torch.__version__}", "format": "pickle",
        "steps_completed": 4, "loss": 0.1,
    }  # fmt: skip

    # By uuid: weights, optimizer and scheduler come back.
    model, optimizer, scheduler = train(torch, 0, seed=99)
    info = load_checkpoint(best_uuid, model=model, optimizer=optimizer, lr_scheduler=scheduler)
    assert predict(torch, model) == saved[best_uuid][1]
    assert info["steps_completed"] == 4
    assert optimizer.state_dict()["state"].keys() == saved[best_uuid][2]["state"].keys()
    assert scheduler.state_dict()["last_epoch"] == 4

    # best:<experiment> is the best by the searcher metric (smallest loss), not the latest.
    fresh = torch.nn.Linear(1, 1)
    assert load_checkpoint(f"best:{experiment['id']}", model=fresh)["steps_completed"] == 4
    assert predict(torch, fresh) == saved[best_uuid][1]

    # <model name>:<version>: a registered version.
    api.create_model("linear")
    api.register_model_version("linear", best_uuid)
    fresh = torch.nn.Linear(1, 1)
    load_checkpoint("linear:1", model=fresh)
    assert predict(torch, fresh) == saved[best_uuid][1]
    with pytest.raises(ValueError, match="aliases are not served"):
        load_checkpoint("linear@production", model=fresh)
    with pytest.raises(ValueError, match="best: takes an experiment id"):
        load_checkpoint("best:latest", model=fresh)


def test_save_to_s3_and_load(torch, api, alice, isolated_store):
    from ckptweb.integrations.torch import load_checkpoint, save_checkpoint

    store = isolated_store("s3")
    trial = services.create_trial(factories.make_experiment(alice, store.config), {})
    model, optimizer, _ = train(torch, 3)

    uuid = save_checkpoint({"id": trial.pk}, 3, model=model, optimizer=optimizer, code=())

    checkpoint = Checkpoint.objects.get(uuid=uuid)
    assert checkpoint.state == "COMPLETED"
    assert set(checkpoint.resources) == {"state-dict.pth", "metadata.json"}
    key = store.key(uuid, "state-dict.pth")
    body = store.admin.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    assert len(body) == checkpoint.resources["state-dict.pth"]
    fresh = torch.nn.Linear(1, 1)
    load_checkpoint(uuid, model=fresh)
    assert predict(torch, fresh) == predict(torch, model)
