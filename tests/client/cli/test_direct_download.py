"""``ckpt checkpoint download --direct``: parallel ranged GETs from S3 (moto), GCS (emulator)
and Azure (Azurite), byte-identical to the archive download; resumable; shared_fs falls
back to the server's stream."""

from __future__ import annotations

import os
import uuid as uuid_lib
from pathlib import Path

import pytest

from ckptweb.client import ApiError, Client
from ckptweb.client.direct import DirectDownload
from experiments import services
from experiments.models import Experiment
from tests.factories import report_with_files
from tests.stores import make_store, unique_prefix

pytestmark = pytest.mark.django_db(transaction=True)

FILES = {
    "state-dict.pth": os.urandom(3 * 1024 * 1024 + 17),
    "metadata.json": b'{"format": "pytorch"}',
    "code/model_def.py": b"class Net:\n    pass\n",
    "empty.bin": b"",
    "deep/a/b.txt": b"b" * 1000,
}


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


def object_checkpoint(request, alice, tmp_path, kind: str, files=FILES, resources=None):
    store = make_store(kind, request, tmp_path, unique_prefix())
    experiment = Experiment.objects.create(
        name="direct", owner=alice, searcher_metric="loss", storage=store.config
    )
    trial = services.create_trial(experiment)
    checkpoint_uuid = uuid_lib.uuid4()
    store.put_files(checkpoint_uuid, files)
    return services.report_checkpoint(
        trial,
        10,
        resources=resources or {path: len(data) for path, data in files.items()},
        uuid=checkpoint_uuid,
    )


@pytest.fixture(params=["s3", "gcs", "azure"])
def kind(request):
    if request.param == "gcs":
        request.getfixturevalue("gcs_signing_key")
    return request.param


def test_direct_is_byte_identical_to_the_archive(
    run_ckpt, request, alice, tmp_path, kind, live_server
):
    checkpoint = object_checkpoint(request, alice, tmp_path, kind)
    direct = run_ckpt(
        "checkpoint", "download", checkpoint.uuid, "--direct", "--parallel", "4", "-o", "direct"
    )
    assert direct.returncode == 0, direct.stderr
    assert "Falling back" not in direct.stderr
    archive = run_ckpt("checkpoint", "download", checkpoint.uuid, "-o", "archive")
    assert archive.returncode == 0, archive.stderr
    got = tree(tmp_path / "direct" / str(checkpoint.uuid))
    assert got == tree(tmp_path / "archive" / str(checkpoint.uuid)) == FILES
    assert not list((tmp_path / "direct").glob(".*"))  # no staging left behind


@pytest.fixture
def client(live_server, token):
    return Client(url=live_server.url, token=token)


def test_large_files_come_in_parallel_parts_and_resume(
    request, alice, tmp_path, client, monkeypatch
):
    checkpoint = object_checkpoint(request, alice, tmp_path, "s3")
    fetched: list[tuple[str, int]] = []
    original = DirectDownload._get_range

    def failing(self, destination, url, part, total):
        if part.path == "state-dict.pth" and part.index == 2:
            raise ApiError("simulated: the storage refused the URL")
        fetched.append((part.path, part.index))
        return original(self, destination, url, part, total)

    monkeypatch.setattr(DirectDownload, "_get_range", failing)
    job = DirectDownload(client, str(checkpoint.uuid), tmp_path / "out", part_size=1024 * 1024)
    with pytest.raises(ApiError):
        job.run()
    staging = tmp_path / "out" / f".{checkpoint.uuid}.direct"
    assert (staging / ".progress.json").exists()
    first_run = set(fetched)
    assert ("state-dict.pth", 0) in first_run or ("state-dict.pth", 1) in first_run

    fetched.clear()

    def recording(self, destination, url, part, total):
        fetched.append((part.path, part.index))
        return original(self, destination, url, part, total)

    monkeypatch.setattr(DirectDownload, "_get_range", recording)
    target = DirectDownload(
        client, str(checkpoint.uuid), tmp_path / "out", part_size=1024 * 1024
    ).run()
    assert tree(target) == FILES
    assert ("state-dict.pth", 2) in fetched
    assert not set(fetched) & first_run, "finished parts were fetched again"
    assert len([p for p in fetched + list(first_run) if p[0] == "state-dict.pth"]) == 4


def test_a_size_that_differs_from_the_record_is_an_error(request, alice, tmp_path, run_ckpt):
    resources = {path: len(data) for path, data in FILES.items()} | {"metadata.json": 5}
    checkpoint = object_checkpoint(request, alice, tmp_path, "s3", resources=resources)
    result = run_ckpt("checkpoint", "download", checkpoint.uuid, "--direct", "-o", "out")
    assert result.returncode == 1
    assert "metadata.json" in result.stderr and "records 5" in result.stderr
    assert not (tmp_path / "out" / str(checkpoint.uuid)).exists()


def test_shared_fs_falls_back_to_the_server_stream(run_ckpt, alice, default_storage, tmp_path):
    experiment = Experiment.objects.create(
        name="fs", owner=alice, searcher_metric="loss", storage=default_storage
    )
    trial = services.create_trial(experiment)
    files = {"a.bin": b"a" * 100, "code/b.py": b"print(1)\n"}
    checkpoint = report_with_files(default_storage, trial, 1, files)
    result = run_ckpt("checkpoint", "download", checkpoint.uuid, "--direct", "-o", "out")
    assert result.returncode == 0, result.stderr
    assert "shared_fs storage has no direct URLs" in result.stderr
    assert "Falling back to the server's stream" in result.stderr
    assert tree(tmp_path / "out" / str(checkpoint.uuid)) == files


def test_parallel_must_be_positive(run_ckpt):
    result = run_ckpt(
        "checkpoint", "download", str(uuid_lib.uuid4()), "--direct", "--parallel", "0"
    )
    assert result.returncode == 2
    assert "--parallel" in result.stderr
