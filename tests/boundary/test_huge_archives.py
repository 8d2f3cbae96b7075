"""Archives past the classic limits: a file over 4 GiB and over 65,535 entries.

Both need zip64 in a zip (sizes and entry count) and large-size encodings in a tar;
``unzip -t`` (which checks every CRC) and ``tar t`` must accept what ckptweb streams. The
big file is sparse and the streamed archives are written sparse too (all-zero chunks
become holes), so the tests cost CPU time (about 30 s each on an idle core), not 8 GiB
of disk.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid as uuid_lib
from pathlib import Path

import pytest

from experiments.models import Checkpoint, Experiment, Trial
from tests.factories import client_for
from tests.servers import missing_service

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

BIG = "weights/huge.bin"
BIG_SIZE = 2**32 + 3 * 4096  # over 4 GiB
SMALL_FILES = 65_536  # with the big one and config.yaml: 65,538 entries
ENTRIES = SMALL_FILES + 2
MARKERS = {0: b"head", 2**31: b"middle", BIG_SIZE - 4: b"tail"}


@pytest.fixture
def huge_checkpoint(alice, default_storage):
    experiment = Experiment.objects.create(
        owner=alice, name="huge", searcher_metric="loss", storage=default_storage
    )
    checkpoint_uuid = uuid_lib.uuid4()
    directory = Path(default_storage.host_path) / str(checkpoint_uuid)
    (directory / "weights").mkdir(parents=True)
    (directory / "config.yaml").write_bytes(b"lr: 0.1\n")
    with open(directory / BIG, "wb") as handle:
        handle.truncate(BIG_SIZE)
        for offset, marker in MARKERS.items():
            handle.seek(offset)
            handle.write(marker)
    shards = directory / "shards"
    shards.mkdir()
    for number in range(SMALL_FILES):
        (shards / f"{number:05d}.txt").write_bytes(b"%d\n" % number)
    return Checkpoint.objects.create(
        trial=Trial.objects.create(experiment=experiment),
        uuid=checkpoint_uuid,
        steps_completed=1,
        state="COMPLETED",
        resources={"config.yaml": 8, BIG: BIG_SIZE},  # what was reported; storage lists all
        size_bytes=BIG_SIZE + 8,
    )


def download_sparse(client, checkpoint, fmt: str, target: Path):
    """Stream one archive to ``target``, seeking over all-zero chunks; (response, size)."""
    response = client.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download?format={fmt}")
    assert response.status_code == 200
    size = 0
    with open(target, "wb") as out:
        for chunk in response.streaming_content:
            if chunk.count(0) == len(chunk):
                out.seek(len(chunk), 1)
            else:
                out.write(chunk)
            size += len(chunk)
        out.truncate(size)
    return response, size


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, timeout=300, **kwargs)


@pytest.fixture
def client(alice):
    for tool in ("unzip", "tar"):
        if shutil.which(tool) is None:
            missing_service(f"{tool} is not installed (apt-get install {tool})")
    return client_for(alice, api=True)


def test_a_zip_over_4_gib_and_65535_entries_passes_unzip_t(client, huge_checkpoint, tmp_path):
    zip_path = tmp_path / "huge.zip"
    _response, zip_size = download_sparse(client, huge_checkpoint, "zip", zip_path)
    assert zip_size > BIG_SIZE
    tested = run("unzip", "-t", "-qq", str(zip_path), text=True)  # every CRC, every header
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    names = run("unzip", "-Z", "-1", str(zip_path), text=True).stdout.splitlines()
    assert len(names) == ENTRIES
    assert {BIG, "config.yaml", "shards/00000.txt", "shards/65535.txt"} <= set(names)
    assert str(BIG_SIZE) in run("unzip", "-l", str(zip_path), BIG, text=True).stdout
    assert run("unzip", "-p", str(zip_path), "shards/65535.txt").stdout == b"65535\n"


def test_a_tar_over_4_gib_and_65535_entries_passes_tar_t(client, huge_checkpoint, tmp_path):
    tar_path = tmp_path / "huge.tar"
    response, tar_size = download_sparse(client, huge_checkpoint, "tar", tar_path)
    assert int(response["Content-Length"]) == tar_size > BIG_SIZE
    listing = run("tar", "tvf", str(tar_path), text=True)
    assert listing.returncode == 0, listing.stderr[-2000:]
    lines = listing.stdout.splitlines()
    assert len(lines) == ENTRIES
    (big_line,) = [line for line in lines if line.endswith(BIG)]
    assert str(BIG_SIZE) in big_line.split()
    assert run("tar", "xOf", str(tar_path), "shards/65535.txt").stdout == b"65535\n"
