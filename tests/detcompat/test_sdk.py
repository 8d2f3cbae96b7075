"""Determined's Python SDK (determined 0.38.1, in its own venv) against /det-compat/."""

from __future__ import annotations

import json
import uuid as uuid_lib

import pytest

from experiments import services
from experiments.models import Experiment
from storage.models import StorageConfig
from tests.detcompat.helpers import ckptweb_api, ckptweb_download, tree
from tests.servers import ACCESS_KEY, BUCKET, SECRET_KEY, s3_admin_client
from tests.spec import spec_example

pytestmark = pytest.mark.django_db(transaction=True)


def test_sdk_login_list_and_download(det_python, master, alice, default_storage, tmp_path):
    experiment, by_number = spec_example(alice)
    checkpoint = by_number[8]
    target = tmp_path / "sdk-download"
    result = det_python(
        f"""
        import json
        from determined.experimental import client
        client.login({master!r}, "alice", "alice-pass-123")
        exp = client.get_experiment({experiment.pk})
        best = exp.list_checkpoints()
        top = exp.list_checkpoints(max_results=2)
        ckpt = client.get_checkpoint({str(checkpoint.uuid)!r})
        path = ckpt.download({str(target)!r}, mode=client.DownloadMode.MASTER)
        print(json.dumps({{
            "name": exp.name,
            "best": [c.uuid for c in best],
            "top": [c.uuid for c in top],
            "steps": ckpt.metadata["steps_completed"],
            "trial": ckpt.training.trial_id,
            "metrics": ckpt.training.validation_metrics,
            "path": path,
        }}))
        """
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["name"] == experiment.name
    # Only validated COMPLETED checkpoints, best first: spec 7 (0.2), 8 (0.3), 5, 4, 3.
    assert out["best"] == [str(by_number[n].uuid) for n in (7, 8, 5, 4, 3)]
    assert out["top"] == out["best"][:2]
    ours = ckptweb_api(alice).get(
        f"/api/v1/experiments/{experiment.pk}/checkpoints?ordering=validation_metric"
        "&state=COMPLETED"
    )
    assert out["best"] == [c["uuid"] for c in ours.json()["results"] if c["validation_metric"]]
    assert out["steps"] == checkpoint.steps_completed
    assert out["trial"] == checkpoint.trial_id
    assert out["metrics"]["avgMetrics"] == {"validation_loss": 0.3}
    assert out["path"] == str(target)
    assert tree(target) == ckptweb_download(alice, checkpoint, tmp_path / "ckptweb")


def test_sdk_bad_password_raises_a_clean_error(det_python, master, alice):
    result = det_python(
        f"""
        from determined.experimental import client
        try:
            client.login({master!r}, "alice", "nope")
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "invalid credentials" in result.stdout


@pytest.fixture
def s3_experiment(request, alice):
    """alice's experiment on moto S3 with one checkpoint written by boto3 directly."""
    server = request.getfixturevalue("moto_server")
    storage = StorageConfig.objects.create(
        name=f"s3-{uuid_lib.uuid4().hex[:8]}",
        type="s3",
        bucket=BUCKET,
        prefix=f"det/{uuid_lib.uuid4().hex[:8]}",
        endpoint_url=server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    experiment = Experiment.objects.create(
        owner=alice,
        name="on s3",
        searcher_metric="loss",
        storage=storage,
        config={"searcher": {"metric": "loss"}},
    )
    trial = services.create_trial(experiment)
    checkpoint_uuid = uuid_lib.uuid4()
    files = {"model.bin": b"\x00\x01" * 5000, "code/train.py": b"print('hi')\n"}
    admin = s3_admin_client(server.endpoint)
    for path, data in files.items():
        admin.put_object(Bucket=BUCKET, Key=f"{storage.prefix}/{checkpoint_uuid}/{path}", Body=data)
    checkpoint = services.report_checkpoint(
        trial, 10, resources={p: len(d) for p, d in files.items()}, uuid=checkpoint_uuid
    )
    return experiment, checkpoint


def test_auto_mode_on_s3_without_client_credentials_falls_back_to_master(
    det, alice, s3_experiment, tmp_path
):
    """The config the client sees has no secrets, so direct S3 access fails; the client
    falls back to the master download, which must give the same bytes."""
    experiment, checkpoint = s3_experiment
    target = tmp_path / "auto"
    result = det("checkpoint", "download", checkpoint.uuid, "--mode", "auto", "-o", target)
    assert result.returncode == 0, result.stderr
    downloaded = tree(target)
    # The client writes metadata.json itself when a checkpoint has none (Determined's way).
    assert json.loads(downloaded.pop("metadata.json")) == {"steps_completed": 10}
    assert downloaded == ckptweb_download(alice, checkpoint, tmp_path / "ckptweb")
    for secret in (ACCESS_KEY, SECRET_KEY):
        assert secret not in result.stdout + result.stderr


def test_experiment_config_omits_secrets(alice, s3_experiment):
    from ckptweb.detcompat.auth import issue_token

    experiment, checkpoint = s3_experiment
    client = ckptweb_api(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(alice)}")
    for url in (
        f"/det-compat/api/v1/checkpoints/{checkpoint.uuid}",
        f"/det-compat/api/v1/experiments/{experiment.pk}",
        f"/det-compat/api/v1/experiments/{experiment.pk}/checkpoints",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert ACCESS_KEY not in text and SECRET_KEY not in text
        assert "access_key" not in text and "secret_key" not in text
    storage = client.get(f"/det-compat/api/v1/checkpoints/{checkpoint.uuid}").json()["checkpoint"][
        "training"
    ]["experimentConfig"]["checkpoint_storage"]
    assert storage["type"] == "s3" and storage["bucket"] == BUCKET
    assert storage["prefix"] == experiment.storage.prefix
