"""``ckpt checkpoint download``: streamed, extracted, verified, resumed after interruption."""

import os
from pathlib import Path

import pytest
from django.urls import NoReverseMatch, reverse

from experiments import services
from experiments.models import Checkpoint
from tests.client.cli.helpers import RecordingProxy
from tests.factories import report_with_files

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def download_route():
    """The route belongs to the storage app; these tests need it."""
    try:
        reverse("checkpoint-download", kwargs={"uuid": "00000000-0000-0000-0000-000000000000"})
    except NoReverseMatch:
        pytest.fail("experiments.api.urls has no checkpoint-download route")


@pytest.fixture
def big_checkpoint(transactional_db, alice, default_storage):
    """A checkpoint of about 3 MiB in the spec's PyTorch layout, files on shared_fs."""
    from experiments.models import Experiment

    experiment = Experiment.objects.create(
        name="dl", owner=alice, searcher_metric="loss", storage=default_storage
    )
    trial = services.create_trial(experiment)
    files = {
        "state-dict.pth": os.urandom(3 * 1024 * 1024 + 17),
        "metadata.json": b'{"format": "pytorch"}',
        "code/model_def.py": b"class Net:\n    pass\n",
        "code/const.yaml": b"searcher:\n  metric: loss\n",
    }
    checkpoint = report_with_files(default_storage, trial, 100, files, metric=0.5)
    return checkpoint, files


def assert_identical(directory: Path, files: dict):
    found = {
        str(path.relative_to(directory)): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }
    assert found == files


def test_it_downloads_and_extracts(run_ckpt, big_checkpoint, tmp_path):
    checkpoint, files = big_checkpoint
    out = tmp_path / "out"
    result = run_ckpt("checkpoint", "download", checkpoint.uuid, "-o", out)
    assert result.returncode == 0, result.stderr
    assert_identical(out / str(checkpoint.uuid), files)
    assert sorted(p.name for p in out.iterdir()) == [str(checkpoint.uuid)]  # no .part left
    assert str(out / str(checkpoint.uuid)) in result.stdout
    # not a terminal: no progress bar
    assert "[#" not in result.stderr


def test_an_interrupted_download_resumes_with_range(
    run_ckpt, big_checkpoint, live_server, tmp_path
):
    checkpoint, files = big_checkpoint
    out = tmp_path / "out"
    with RecordingProxy(live_server.url, cut=1, cut_after=1024 * 1024) as proxy:
        result = run_ckpt("checkpoint", "download", checkpoint.uuid, "-o", out, url=proxy.url)
    assert result.returncode == 0, result.stderr
    assert proxy.download_ranges() == [None, f"bytes={1024 * 1024}-"]
    assert_identical(out / str(checkpoint.uuid), files)


def test_a_failed_download_resumes_on_the_next_run(run_ckpt, big_checkpoint, live_server, tmp_path):
    checkpoint, files = big_checkpoint
    out = tmp_path / "out"
    with RecordingProxy(live_server.url, cut=1, cut_after=2 * 1024 * 1024) as proxy:
        first = run_ckpt(
            "checkpoint", "download", checkpoint.uuid, "-o", out, "--retries", "0", url=proxy.url
        )
        assert first.returncode == 1
        assert "interrupted" in first.stderr and "resume" in first.stderr
        assert "Traceback" not in first.stderr
        staging = out / f".{checkpoint.uuid}.extracting"
        journal = out / f"{checkpoint.uuid}.download.json"
        assert (staging / "state-dict.pth").stat().st_size > 0  # extracted as it arrived
        assert journal.exists()
        assert not (out / str(checkpoint.uuid)).exists()

        second = run_ckpt("checkpoint", "download", checkpoint.uuid, "-o", out, url=proxy.url)
    assert second.returncode == 0, second.stderr
    assert proxy.download_ranges() == [None, f"bytes={2 * 1024 * 1024}-"]
    assert not staging.exists() and not journal.exists()
    assert_identical(out / str(checkpoint.uuid), files)


def test_sizes_are_verified_against_resources(run_ckpt, big_checkpoint, tmp_path):
    checkpoint, _ = big_checkpoint
    resources = dict(checkpoint.resources)
    resources["metadata.json"] += 1
    Checkpoint.objects.filter(pk=checkpoint.pk).update(resources=resources)
    out = tmp_path / "out"
    result = run_ckpt("checkpoint", "download", checkpoint.uuid, "-o", out)
    assert result.returncode == 1
    assert "metadata.json" in result.stderr and "records" in result.stderr
    assert not (out / str(checkpoint.uuid)).exists()


def test_a_deleted_checkpoint_is_an_error(run_ckpt, big_checkpoint, tmp_path):
    checkpoint, _ = big_checkpoint
    Checkpoint.objects.filter(pk=checkpoint.pk).update(state="DELETED")
    result = run_ckpt("checkpoint", "download", checkpoint.uuid, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_terminal_gets_a_progress_bar(
    ckpt_executable, live_server, token, big_checkpoint, tmp_path
):
    import pty
    import subprocess

    checkpoint, files = big_checkpoint
    master, slave = pty.openpty()
    env = {**os.environ, "CKPTWEB_URL": live_server.url, "CKPTWEB_TOKEN": token}
    process = subprocess.Popen(
        [
            str(ckpt_executable),
            "checkpoint",
            "download",
            str(checkpoint.uuid),
            "-o",
            str(tmp_path / "out"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO once the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert process.wait(timeout=60) == 0
    os.close(master)
    shown = b"".join(chunks).decode()
    assert "100%" in shown and "[#####" in shown
    assert_identical(tmp_path / "out" / str(checkpoint.uuid), files)
