"""Determined's Core API (``core_v2``, unmanaged) training against /det-compat/.

A real training loop runs in the Determined venv and reports as it would to a Determined
master: the experiment and trial, training and validation metrics, checkpoints written by
Determined's own storage manager to a path (``checkpoint_storage: {type: directory}``),
its printed lines; ending the run completes the trial and the experiment, whose GC run
applies the policy. Then ckptweb's own API, database and the bytes on storage are compared
with what the script reported.

The loop is PyTorch on CPU: ``make det-venv`` installs only ``determined``, so the script
imports the project venv's torch (appended to ``sys.path``, after the Determined venv's
own packages); where no torch is found at all it fits the same line in plain Python (the
reporting calls are the same). ``tensorboard_mode=MANUAL``: AUTO needs the tensorboard
package, which neither venv has.
"""

from __future__ import annotations

import importlib.util
import json
import sysconfig
import threading
import uuid as uuid_lib
from pathlib import Path

import pytest
from django.db import connection

from experiments import logs, services
from experiments.choices import CheckpointState, ExperimentState, TrialState
from experiments.models import Checkpoint, Experiment, TrialLog, TrialMetrics, Validation
from storage.models import StorageConfig
from tests.detcompat.helpers import ckptweb_api, ckptweb_download, tree
from tests.servers import ACCESS_KEY, BUCKET, SECRET_KEY, s3_admin_client

pytestmark = pytest.mark.django_db(transaction=True)

#: Where the project's venv has torch (``make det-venv`` installs only ``determined``).
PROJECT_SITE_PACKAGES = sysconfig.get_paths()["purelib"]

#: The training script: ``{master}``, ``{user}`` and ``{storage}`` (the checkpoint_storage
#: section, with its save_* policy) are filled in.
SCRIPT = """
import json, os, sys
from determined import core
from determined.experimental import client as det_client, core_v2

try:
    import torch
except ImportError:  # the project's torch, after the Determined venv's own packages
    sys.path.append(os.environ["PROJECT_SITE_PACKAGES"])
    try:
        import torch
    except ImportError:
        torch = None

client = det_client.Determined({master!r}, user={user!r}, password={user!r} + "-pass-123")
storage = {storage!r}
core_v2.init(
    config=core_v2.Config(
        name="core-v2-line",
        hparams={{"lr": 0.1}},
        searcher={{"name": "single", "metric": "val_loss", "smaller_is_better": True}},
        checkpoint_storage=storage,
    ),
    client=client,
    # AUTO would write TensorBoard files, which needs the tensorboard package.
    tensorboard_mode=core.TensorboardMode.MANUAL,
)
info = core_v2.info
xs = [i / 10 for i in range(20)]
ys = [3 * x + 1 for x in xs]
if torch is not None:
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, Y = torch.tensor(xs).unsqueeze(1), torch.tensor(ys).unsqueeze(1)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), Y)
        loss.backward()
        opt.step()
        return loss.item()

    def params():
        return {{"w": model.weight.item(), "b": model.bias.item()}}
else:
    w = b = 0.0

    def step():
        global w, b
        n = len(xs)
        loss = sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / n
        gw = sum(2 * (w * x + b - y) * x for x, y in zip(xs, ys)) / n
        gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys)) / n
        w, b = w - 0.1 * gw, b - 0.1 * gb
        return loss

    def params():
        return {{"w": w, "b": b}}

reported = {{"training": [], "validation": [], "checkpoints": {{}}}}
for steps in range(1, 31):
    loss = step()
    core_v2.train.report_training_metrics(steps_completed=steps, metrics={{"loss": loss}})
    reported["training"].append([steps, loss])
    if steps % 10 == 0:
        with core_v2.checkpoint.store_path({{"steps_completed": steps}}) as (path, uuid):
            (path / "model.json").write_text(json.dumps(params()))
            (path / "code").mkdir()
            (path / "code" / "train.py").write_text("# the training script")
        reported["checkpoints"][uuid] = steps
        # The validation of a step arrives after its checkpoint.
        val_loss = loss * 1.5
        core_v2.train.report_validation_metrics(
            steps_completed=steps, metrics={{"val_loss": val_loss}}
        )
        reported["validation"].append([steps, val_loss])
        print(f"step {{steps}}: loss {{loss:.4f}} checkpoint {{uuid}}")
reported["experiment"] = info.trial.experiment_id
reported["trial"] = info.trial.trial_id
reported["torch"] = torch is not None
core_v2.close()
print("RESULT " + json.dumps(reported), file=sys.__stdout__)
"""


@pytest.fixture
def one_request_at_a_time(live_server):
    """On the in-memory SQLite test database every thread of the live server shares one
    connection (pytest-django's override), so the client's concurrent calls (metrics,
    logs and heartbeat threads) are served one at a time; PostgreSQL, and a SQLite file
    in production (IMMEDIATE transactions, busy timeout), serve them as they come."""
    if connection.vendor != "sqlite":
        yield
        return
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            return app(environ, start_response)

    httpd.set_app(serialized)
    yield
    httpd.set_app(app)


POLICY = {"save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1}


def run_training(det_python, master, storage: dict, user: str = "alice") -> dict:
    script = SCRIPT.format(master=master, storage={**storage, **POLICY}, user=user)
    result = det_python(script, timeout=300, PROJECT_SITE_PACKAGES=PROJECT_SITE_PACKAGES)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_a_core_v2_training_loop_reports_to_ckptweb(
    det_python, master, alice, default_storage, one_request_at_a_time, tmp_path
):
    root = default_storage.host_path
    out = run_training(det_python, master, {"type": "directory", "container_path": root})
    assert out["torch"] == (importlib.util.find_spec("torch") is not None)

    experiment = Experiment.objects.get(pk=out["experiment"])
    trial = experiment.trials.get()
    assert trial.pk == out["trial"]
    assert (experiment.name, experiment.owner, experiment.searcher_metric) == (
        "core-v2-line",
        alice,
        "val_loss",
    )
    assert experiment.storage == default_storage  # the path is the configured storage
    assert trial.hparams == {"lr": 0.1}

    # Training metrics: their own group, every step, as reported.
    training = TrialMetrics.objects.filter(trial=trial, group="training").order_by("id")
    assert [[r.steps_completed, r.metrics["loss"]] for r in training] == out["training"]
    assert out["training"][-1][1] < out["training"][0][1] / 10  # it did learn
    validations = Validation.objects.filter(trial=trial).order_by("id")
    assert [[v.steps_completed, v.metrics["val_loss"]] for v in validations] == out["validation"]

    # Checkpoints: tied to the trial by taskId, their validation linked though it came after.
    checkpoints = {str(c.uuid): c for c in Checkpoint.objects.filter(trial=trial)}
    assert {u: c.steps_completed for u, c in checkpoints.items()} == out["checkpoints"]
    metric_at = dict(out["validation"])
    for checkpoint in checkpoints.values():
        assert checkpoint.validation_metric == pytest.approx(metric_at[checkpoint.steps_completed])

    # Ending the run completed the trial and the experiment, and the policy ran: the trial's
    # best (step 30, the lowest val_loss) is also its latest, so it alone is kept.
    trial.refresh_from_db()
    experiment.refresh_from_db()
    assert (trial.state, experiment.state) == (TrialState.COMPLETED, ExperimentState.COMPLETED)
    states = {uuid: Checkpoint.objects.get(uuid=uuid).state for uuid in checkpoints}
    by_steps = {steps: uuid for uuid, steps in out["checkpoints"].items()}
    assert states[by_steps[30]] == CheckpointState.COMPLETED
    assert states[by_steps[10]] == states[by_steps[20]] == CheckpointState.DELETED

    # The bytes: Determined's storage manager wrote <root>/<uuid>/; ckptweb serves the same.
    kept = Checkpoint.objects.get(uuid=by_steps[30])
    on_disk = tree(_dir(root, kept))
    assert json.loads(on_disk["model.json"]).keys() == {"w", "b"}
    assert ckptweb_download(alice, kept, tmp_path / "ckptweb-copy") == on_disk
    assert set(on_disk) == {"model.json", "metadata.json", "code/train.py"}
    assert kept.resources == {name: len(data) for name, data in on_disk.items()}
    for uuid in (by_steps[10], by_steps[20]):
        assert not _dir(root, Checkpoint.objects.get(uuid=uuid)).exists()

    # Its printed lines are kept, and ckptweb's API shows the training group.
    lines = list(TrialLog.objects.filter(trial=trial).values_list("line", flat=True))
    for steps in (10, 20, 30):
        assert any(line.startswith(f"step {steps}: loss") for line in lines), lines
    api = ckptweb_api(alice).get(f"/api/v1/trials/{trial.pk}/metrics?group=training").json()
    assert api["count"] == 30


def _dir(root: str, checkpoint: Checkpoint) -> Path:
    """Where Determined's directory storage manager put the checkpoint's files."""
    return Path(root) / str(checkpoint.uuid)


def test_a_core_v2_loop_checkpoints_to_s3(
    det_python, master, staff, moto_server, one_request_at_a_time, tmp_path
):
    """The same loop on S3 (moto), run by staff, who may name storage credentials: the
    experiment's storage is added with them (kept out of every answer), the checkpoints
    Determined's S3 storage manager uploaded are the ones ckptweb keeps and serves."""
    prefix = f"core-v2/{uuid_lib.uuid4().hex[:8]}"
    section = {
        "type": "s3",
        "bucket": BUCKET,
        "prefix": prefix,
        "endpoint_url": moto_server.endpoint,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
    }
    out = run_training(det_python, master, section, user="staff")

    experiment = Experiment.objects.get(pk=out["experiment"])
    assert (experiment.storage.type, experiment.storage.prefix) == ("s3", prefix)
    assert experiment.state == ExperimentState.COMPLETED
    assert SECRET_KEY not in json.dumps(experiment.config)
    by_steps = {steps: uuid for uuid, steps in out["checkpoints"].items()}
    listing = s3_admin_client(moto_server.endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    keys = {item["Key"].removeprefix(prefix + "/") for item in listing.get("Contents", [])}
    kept = by_steps[30]
    # Determined's S3 manager also uploads a marker of each directory ("code/").
    names = ("model.json", "metadata.json", "code/train.py", "code/")
    assert keys == {f"{kept}/{name}" for name in names}
    checkpoint = Checkpoint.objects.get(uuid=kept)
    assert checkpoint.state == CheckpointState.COMPLETED
    files = ckptweb_download(staff, checkpoint, tmp_path / "ckptweb")
    admin = s3_admin_client(moto_server.endpoint)
    for name, data in files.items():
        key = f"{prefix}/{kept}/{name}"
        assert admin.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    for steps in (10, 20):
        assert Checkpoint.objects.get(uuid=by_steps[steps]).state == CheckpointState.DELETED


def test_reports_need_the_experiments_owner(det_python, master, alice, bob, default_storage):
    """bob cannot report to alice's trial: the same 403 as ckptweb's own API."""
    experiment = services.create_experiment(
        alice, {"name": "x", "searcher": {"metric": "loss"}}, may_add_storage=False
    )
    trial = services.create_trial(experiment)
    result = det_python(
        f"""
        from determined.common.api import bindings
        from determined.experimental import client as det_client
        client = det_client.Determined({master!r}, user="bob", password="bob-pass-123")
        ckpt = bindings.v1Checkpoint(
            metadata={{"steps_completed": 1}}, resources={{}}, taskId="trial-{trial.pk}",
            training=bindings.v1CheckpointTrainingMetadata(), uuid={str(uuid_lib.uuid4())!r},
            state=bindings.checkpointv1State.COMPLETED, reportTime="2026-01-01T00:00:00Z",
        )
        try:
            bindings.post_ReportCheckpoint(client._session, body=ckpt)
        except Exception as exc:
            print("refused", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "Only the experiment's owner or staff may change it." in result.stdout, result.stdout
    assert not Checkpoint.objects.filter(trial=trial).exists()
    assert StorageConfig.objects.count() == 1


def test_det_trial_logs_prints_the_kept_lines(det, alice, default_storage):
    experiment = services.create_experiment(
        alice, {"name": "x", "searcher": {"metric": "loss"}}, may_add_storage=False
    )
    trial = services.create_trial(experiment)
    logs.append_trial_logs(trial, [(f"epoch {n} done", None) for n in range(5)])

    every = det("trial", "logs", trial.pk)
    assert every.returncode == 0, every.stderr
    assert [x for x in every.stdout.splitlines() if x.startswith("epoch")] == [
        f"epoch {n} done" for n in range(5)
    ]
    tail = det("trial", "logs", trial.pk, "--tail", "2")
    assert [x for x in tail.stdout.splitlines() if x.startswith("epoch")] == [
        "epoch 3 done",
        "epoch 4 done",
    ]
    head = det("trial", "logs", trial.pk, "--head", "1")
    assert [x for x in head.stdout.splitlines() if x.startswith("epoch")] == ["epoch 0 done"]
    missing = det("trial", "logs", 999999)
    assert missing.returncode != 0 and "trial 999999 not found" in missing.stderr + missing.stdout


# --- bad input: a 4xx in Determined's error body, naming the field; nothing stored ---------


@pytest.fixture
def core_api(alice):
    from ckptweb.detcompat.auth import issue_token

    api = ckptweb_api(None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(alice)}")
    return api


@pytest.fixture
def running_trial(alice, default_storage):
    experiment = services.create_experiment(
        alice, {"name": "x", "searcher": {"metric": "loss"}}, may_add_storage=False
    )
    return services.create_trial(experiment)


def send(api, method, url, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return getattr(api, method)(f"/det-compat/{url}", data, content_type="application/json")


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "named"),
    [
        ("post", "api/v1/experiments", {"config": "name: x", "unmanaged": False}, 400, "unmanaged"),
        ("post", "api/v1/experiments", {"config": {"name": "x"}, "unmanaged": True}, 400, "config"),
        (
            "post",
            "api/v1/experiments",
            {
                "config": "name: x\ncheckpoint_storage: {type: directory, container_path: /nope}\n"
                "searcher: {metric: loss}",
                "unmanaged": True,
            },
            400,
            "checkpoint_storage",
        ),
        ("post", "api/v1/trials", {"experimentId": "one", "unmanaged": True}, 400, "experimentId"),
        ("patch", "api/v1/trials/{t}", {"state": "STATE_STOPPING_KILLED"}, 400, "state"),
        (
            "post",
            "api/v1/trials/{t}/metrics",
            {
                "group": "training",
                "metrics": {"metrics": {"avgMetrics": {"loss": "low"}}, "stepsCompleted": 1},
            },
            400,
            "metrics",
        ),
        (
            "post",
            "api/v1/trials/{t}/metrics",
            {
                "group": "a b",
                "metrics": {"metrics": {"avgMetrics": {"loss": 1}}, "stepsCompleted": 1},
            },
            400,
            "group",
        ),
        (
            "post",
            "api/v1/trials/{t}/metrics",
            {"group": "training", "metrics": {"metrics": {"avgMetrics": {"loss": 1}}}},
            400,
            "stepsCompleted",
        ),
        (
            "post",
            "api/v1/checkpoints",
            {"taskId": "1.abc", "uuid": str(uuid_lib.uuid4())},
            400,
            "taskId",
        ),
        (
            "post",
            "api/v1/checkpoints",
            {"taskId": "trial-{t}", "uuid": "nope", "metadata": {"steps_completed": 1}},
            400,
            "uuid",
        ),
        (
            "post",
            "api/v1/checkpoints",
            {"taskId": "trial-{t}", "uuid": str(uuid_lib.uuid4()), "metadata": {}},
            400,
            "steps_completed",
        ),
        (
            "post",
            "api/v1/checkpoints",
            {
                "taskId": "trial-{t}",
                "uuid": str(uuid_lib.uuid4()),
                "metadata": {"steps_completed": 1},
                "resources": {"../x": "5"},
            },
            400,
            "resources",
        ),
        ("post", "task-logs", {"log": "x"}, 400, "body"),
        ("post", "task-logs", [{"task_id": "trial-{t}", "log": 5}], 400, "log"),
        ("post", "task-logs", [{"task_id": "nope", "log": "x\n"}], 400, "taskId"),
        ("post", "task-logs", [{"task_id": {"a": 1}, "log": "x\n"}], 400, "task_id"),
        ("get", "api/v1/trials/metrics/trial_metrics?group=training", None, 400, "trialIds"),
        ("get", "api/v1/trials/999999/logs", None, 404, "trial 999999"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    core_api, running_trial, method, url, body, status, named
):
    t = running_trial.pk
    url = url.replace("{t}", str(t))
    if body is not None:
        body = json.loads(json.dumps(body).replace("{t}", str(t)))
    response = (
        core_api.get(f"/det-compat/{url}") if method == "get" else send(core_api, method, url, body)
    )
    assert response.status_code == status, response.content
    error = response.json()
    assert named in error["message"] and error["error"]["error"] == error["message"], error
    running_trial.refresh_from_db()
    assert running_trial.state == TrialState.ACTIVE
    assert not Checkpoint.objects.exists() and not TrialMetrics.objects.exists()
    assert not TrialLog.objects.exists() and Experiment.objects.count() == 1


def test_an_ended_trial_cannot_run_again(core_api, running_trial):
    assert (
        send(
            core_api, "patch", f"api/v1/trials/{running_trial.pk}", {"state": "STATE_COMPLETED"}
        ).status_code
        == 200
    )
    response = send(
        core_api, "patch", f"api/v1/trials/{running_trial.pk}", {"state": "STATE_RUNNING"}
    )
    assert response.status_code == 409, response.content
    running_trial.refresh_from_db()
    assert running_trial.state == TrialState.COMPLETED


def test_a_duplicate_checkpoint_uuid_is_refused(core_api, running_trial):
    body = {
        "taskId": f"trial-{running_trial.pk}",
        "uuid": str(uuid_lib.uuid4()),
        "metadata": {"steps_completed": 5},
        "resources": {"a.bin": "3", "code/": "0"},
    }
    assert send(core_api, "post", "api/v1/checkpoints", body).status_code == 200
    (checkpoint,) = Checkpoint.objects.all()
    assert (checkpoint.resources, checkpoint.steps_completed) == ({"a.bin": 3}, 5)
    again = send(core_api, "post", "api/v1/checkpoints", body)
    # The same refusal as /api/v1/ (tests/experiments/ingest: test_duplicate_uuid_is_400).
    assert again.status_code == 400 and "uuid" in again.json()["message"], again.content
    assert Checkpoint.objects.count() == 1


def test_task_logs_are_kept_per_trial_with_their_time(core_api, running_trial):
    task = f"trial-{running_trial.pk}"
    body = [
        {"task_id": task, "log": "epoch 1\n", "timestamp": "2026-01-02T03:04:05+00:00"},
        {"task_id": task, "log": "epoch 2\n", "timestamp": "2026-01-02T03:04:06"},
        {"task_id": task, "log": "no time\n"},
    ]
    response = send(core_api, "post", "task-logs", body)
    assert response.status_code == 200, response.content
    rows = list(TrialLog.objects.filter(trial=running_trial).order_by("id"))
    assert [r.line for r in rows] == ["epoch 1", "epoch 2", "no time"]
    assert [r.logged_at and r.logged_at.isoformat() for r in rows] == [
        "2026-01-02T03:04:05+00:00",
        "2026-01-02T03:04:06+00:00",
        None,
    ]
