"""``ckpt model list|describe|register|download`` against the live server."""

import os
import re
from pathlib import Path

import pytest

from experiments import registry
from experiments.models import ModelVersion
from tests.client.cli.helpers import RecordingProxy
from tests.factories import report_with_files

pytestmark = pytest.mark.django_db(transaction=True)


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


def test_register_list_describe(run_ckpt, populated, alice):
    _experiment, checkpoints = populated
    result = run_ckpt("model", "register", "resnet-prod", checkpoints[1].uuid, "--create")
    assert result.returncode == 0, result.stderr
    assert "resnet-prod v1" in result.stdout
    result = run_ckpt("model", "register", "resnet-prod", checkpoints[3].uuid, "--comment", "ok")
    assert "resnet-prod v2" in result.stdout
    listing = run_ckpt("model", "list")
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if "resnet-prod" in line)
    assert "v2" in line and str(checkpoints[3].uuid) in line and "0.7" in line
    described = run_ckpt("model", "describe", "resnet-prod")
    assert described.returncode == 0, described.stderr
    assert str(checkpoints[1].uuid) in described.stdout
    assert "v1" in described.stdout and "v2" in described.stdout
    assert ModelVersion.objects.filter(comment="ok").count() == 1
    checkpoint = run_ckpt("checkpoint", "describe", checkpoints[1].uuid)
    assert re.search(r"Registered as: +resnet-prod v1\n", checkpoint.stdout), checkpoint.stdout


def test_errors_are_one_line(run_ckpt, populated):
    _experiment, checkpoints = populated
    missing = run_ckpt("model", "register", "nope", checkpoints[0].uuid)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    bad = run_ckpt("model", "register", "bad name", checkpoints[0].uuid, "--create")
    assert bad.returncode == 1
    assert "name" in bad.stderr and "Traceback" not in bad.stderr
    absent = run_ckpt("model", "download", "nope")
    assert absent.returncode == 1 and "Traceback" not in absent.stderr


def test_download_by_name_is_byte_identical_and_resumes(
    run_ckpt, alice, default_storage, populated, live_server, tmp_path
):
    experiment, _ = populated
    trial = experiment.trials.first()
    files = {
        "state-dict.pth": os.urandom(2 * 1024 * 1024 + 5),
        "metadata.json": b'{"framework": "torch"}',
        "code/model_def.py": b"class Net:\n    pass\n",
    }
    checkpoint = report_with_files(default_storage, trial, 900, files, metric=0.1)
    model = registry.create_model(alice, "resnet-prod")
    registry.register_version(model, checkpoint, alice)
    out = tmp_path / "out"
    with RecordingProxy(live_server.url, cut=1, cut_after=1024 * 1024) as proxy:
        result = run_ckpt("model", "download", "resnet-prod", "-o", out, url=proxy.url)
    assert result.returncode == 0, result.stderr
    assert proxy.download_ranges() == [None, f"bytes={1024 * 1024}-"]
    assert any("/models/resnet-prod/versions/1/download" in path for path, _ in proxy.requests)
    assert tree(out / str(checkpoint.uuid)) == files
    again = run_ckpt("model", "download", "resnet-prod", "1", "-o", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert tree(tmp_path / "again" / str(checkpoint.uuid)) == files
