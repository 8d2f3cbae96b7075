"""``Client.upload_checkpoint`` and ``ckpt checkpoint upload`` against the live server:
shared_fs through ckptweb, S3 (moto) through presigned URLs, a killed upload resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckptweb.client import Client
from ckptweb.client.errors import ApiError
from ckptweb.client.upload import PUT_ATTEMPTS
from experiments import services
from experiments.models import Checkpoint
from storage.models import UploadSession
from tests import factories
from tests.faults import FaultProxy

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


@pytest.mark.parametrize("kind", ["s3", "azure", "gcs"])
def test_a_killed_multipart_upload_resumes_without_resending_its_stored_parts(
    client, alice, isolated_store, tmp_path, settings, kind, request
):
    store = isolated_store(kind)
    if kind == "gcs":
        request.getfixturevalue("gcs_signing_key")
    settings.CKPTWEB_UPLOAD_PART_BYTES = 5 * MiB
    trial = services.create_trial(factories.make_experiment(alice, store.config), {})
    big = bytes(range(256)) * (12 * MiB // 256)  # parts of 5, 5 and 2 MiB
    source = write_tree(tmp_path / "ckpt", {"big.bin": big})

    def killed(done, total):
        if done > 6 * MiB:
            raise KeyboardInterrupt  # dies while sending the second part

    with pytest.raises((KeyboardInterrupt, ApiError)):
        client.upload_checkpoint(trial.pk, source, 7, parallel=1, progress=killed)
    seen = []
    checkpoint = client.upload_checkpoint(
        trial.pk, source, 7, parallel=1, progress=lambda done, total: seen.append(done)
    )

    assert seen[0] == 5 * MiB  # the first part is on storage: not sent again
    assert seen[-1] == 12 * MiB and checkpoint["resources"] == {"big.bin": 12 * MiB}
    key = f"{store.prefix}/{checkpoint['uuid']}/big.bin"
    if kind == "s3":
        body = store.admin.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    elif kind == "azure":
        body = store.admin.download_blob(key).readall()
    else:
        body = store.admin.bucket(store.bucket).blob(key).download_as_bytes()
    assert body == big


@pytest.mark.parametrize("failure", ["reset", "busy"])
def test_a_put_that_fails_on_the_way_is_retried_within_the_call(
    live_server, token, fs_trial, tmp_path, failure
):
    """Through a real proxy that resets (or answers 503 to) the first PUTs: the upload
    completes in one call, byte-exact, and the progress ends at the total, not above it."""
    proxy = FaultProxy(live_server.url).start()
    proxy.put_failure, proxy.fail_puts = failure, 2
    client = Client(url=proxy.endpoint, token=token)
    source = write_tree(tmp_path / "ckpt", FILES)
    seen = []
    try:
        checkpoint = client.upload_checkpoint(
            fs_trial.pk, source, 42, parallel=1, progress=lambda done, total: seen.append(done)
        )
    finally:
        proxy.stop()

    assert len(proxy.failed_puts) == 2 and proxy.forwarded["PUT "] == len(FILES)
    assert checkpoint["state"] == "COMPLETED"
    assert stored(fs_trial, checkpoint["uuid"]) == FILES
    assert seen[-1] == sum(map(len, FILES.values())) and max(seen) == seen[-1]


def test_a_put_that_keeps_failing_fails_naming_the_file_and_the_upload_resumes(
    live_server, token, fs_trial, tmp_path, monkeypatch
):
    monkeypatch.setattr("ckptweb.client.upload.backoff", lambda *args: 0)
    proxy = FaultProxy(live_server.url).start()
    proxy.fail_puts = PUT_ATTEMPTS
    source = write_tree(tmp_path / "ckpt", {"a.bin": b"a" * MiB})
    try:
        with pytest.raises(ApiError, match=r"uploading a\.bin failed .*run again to resume"):
            Client(url=proxy.endpoint, token=token).upload_checkpoint(fs_trial.pk, source, 1)
    finally:
        proxy.stop()
    assert len(proxy.failed_puts) == PUT_ATTEMPTS
    assert UploadSession.objects.get().state == "OPEN" and not Checkpoint.objects.exists()

    checkpoint = Client(url=live_server.url, token=token).upload_checkpoint(fs_trial.pk, source, 1)

    assert stored(fs_trial, checkpoint["uuid"]) == {"a.bin": b"a" * MiB}


def test_a_refused_put_is_not_retried(live_server, token, fs_trial, tmp_path):
    """A 4xx other than 408/429 is a refusal: one PUT, then the server's message."""
    source = write_tree(tmp_path / "ckpt", {"a.bin": b"a" * 1000})
    proxy = FaultProxy(live_server.url).start()
    client = Client(url=proxy.endpoint, token=token)

    def abort_before_sending(done, total):  # the first call comes before the first PUT
        upload = UploadSession.objects.get()
        if upload.state == "OPEN":
            client.request("DELETE", f"uploads/{upload.pk}")

    try:
        with pytest.raises(ApiError) as refused:
            client.upload_checkpoint(fs_trial.pk, source, 1, progress=abort_before_sending)
    finally:
        proxy.stop()

    assert 400 <= refused.value.status < 500 and refused.value.status not in (408, 429)
    assert str(UploadSession.objects.get().pk) in refused.value.message
    assert proxy.forwarded["PUT "] == 1 and not Checkpoint.objects.exists()
