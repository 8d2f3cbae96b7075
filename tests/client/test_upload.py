"""``Client.upload_checkpoint`` and ``ckpt checkpoint upload`` against the live server:
shared_fs through ckptweb, S3 (moto) through presigned URLs, a killed upload resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckptweb.client import Client
from ckptweb.client.errors import ApiError
from experiments import services
from experiments.models import Checkpoint
from storage.models import UploadSession
from tests import factories

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CKPTWEB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def client(live_server, token):
    return Client(url=live_server.url, token=token)


@pytest.fixture
def fs_trial(alice, default_storage):
    return services.create_trial(factories.make_experiment(alice, default_storage), {})


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


FILES = {
    "a.bin": b"a" * (2 * MiB),
    "b/c.bin": b"c" * (2 * MiB),
    "metadata.json": b'{"x": 1}',
}


def stored(trial, uuid) -> dict[str, bytes]:
    root = Path(trial.experiment.storage.host_path) / uuid
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_directory_uploads_to_shared_fs_as_a_completed_checkpoint(client, fs_trial, tmp_path):
    source = write_tree(tmp_path / "ckpt", FILES)

    checkpoint = client.upload_checkpoint(fs_trial.pk, source, 42, metadata={"m": 1})

    assert checkpoint["state"] == "COMPLETED" and checkpoint["steps_completed"] == 42
    assert checkpoint["resources"] == {path: len(data) for path, data in FILES.items()}
    assert checkpoint["metadata"] == {"m": 1}
    assert stored(fs_trial, checkpoint["uuid"]) == FILES
    assert not list((tmp_path / "cache").rglob("*.json"))  # the resume state is gone


def test_a_killed_upload_resumes_and_skips_what_is_present(client, fs_trial, tmp_path):
    source = write_tree(tmp_path / "ckpt", FILES)

    def killed(done, total):
        if done > len(FILES["a.bin"]) + MiB // 2:
            raise KeyboardInterrupt  # the training job dies halfway through b/c.bin

    with pytest.raises((KeyboardInterrupt, ApiError)):
        client.upload_checkpoint(fs_trial.pk, source, 42, parallel=1, progress=killed)
    session = UploadSession.objects.get()
    assert session.state == "OPEN" and not Checkpoint.objects.exists()
    a_on_disk = Path(fs_trial.experiment.storage.host_path) / str(session.uuid) / "a.bin"
    assert a_on_disk.read_bytes() == FILES["a.bin"]
    before = a_on_disk.stat().st_mtime_ns
    seen = []

    checkpoint = client.upload_checkpoint(
        fs_trial.pk, source, 42, parallel=1, progress=lambda done, total: seen.append(done)
    )

    assert checkpoint["uuid"] == str(session.uuid)  # the same session, resumed
    assert seen[0] >= len(FILES["a.bin"])  # a.bin was present: not sent again
    assert a_on_disk.stat().st_mtime_ns == before
    assert stored(fs_trial, checkpoint["uuid"]) == FILES
    assert UploadSession.objects.count() == 1


@pytest.mark.parametrize("kind", ["s3", "azure", "gcs"])
def test_an_upload_to_an_object_store_goes_to_presigned_urls_in_parts(
    client, alice, isolated_store, tmp_path, settings, kind, request
):
    store = isolated_store(kind)
    if kind == "gcs":
        request.getfixturevalue("gcs_signing_key")
    settings.CKPTWEB_UPLOAD_PART_BYTES = 5 * MiB  # S3's smallest part; 64 MiB by default
    trial = services.create_trial(factories.make_experiment(alice, store.config), {})
    files = {"big.bin": bytes(range(256)) * (11 * MiB // 256), "small.txt": b"hi"}
    source = write_tree(tmp_path / "ckpt", files)

    checkpoint = client.upload_checkpoint(trial.pk, source, 7)

    assert checkpoint["state"] == "COMPLETED"
    assert checkpoint["resources"] == {"big.bin": 11 * MiB, "small.txt": 2}
    key = f"{store.prefix}/{checkpoint['uuid']}/big.bin"
    if kind == "s3":
        body = store.admin.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    elif kind == "azure":
        body = store.admin.download_blob(key).readall()
    else:
        body = store.admin.bucket(store.bucket).blob(key).download_as_bytes()
    assert body == files["big.bin"]


def test_ckpt_checkpoint_upload(run_ckpt, fs_trial, tmp_path):
    source = write_tree(tmp_path / "ckpt", {"w.bin": b"w" * 1000, "metadata.json": b"{}"})

    result = run_ckpt(
        "checkpoint", "upload", source, "--trial", fs_trial.pk, "--steps", 9,
        "--metadata", '{"note": "cli"}',
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    checkpoint = Checkpoint.objects.get()
    assert f"Uploaded checkpoint {checkpoint.uuid} (2 files" in result.stdout
    assert checkpoint.state == "COMPLETED" and checkpoint.metadata == {"note": "cli"}
    assert stored(fs_trial, str(checkpoint.uuid)) == {"w.bin": b"w" * 1000, "metadata.json": b"{}"}
    bad = run_ckpt("checkpoint", "upload", source, "--trial", fs_trial.pk, "--steps", 9,
                   "--metadata", "[1]")  # fmt: skip
    assert bad.returncode != 0 and "--metadata must be a JSON object" in bad.stderr
