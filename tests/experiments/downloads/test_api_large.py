"""A 200 MB checkpoint downloads from every backend with bounded server-side memory."""

from __future__ import annotations

import hashlib
import random
import tarfile
import tracemalloc

import pytest

from storage.backends import get_backend

pytestmark = pytest.mark.usefixtures("secret_watch")

LARGE_SIZE = 200 * 1024 * 1024
MEMORY_BUDGET = 50 * 1024 * 1024


@pytest.fixture(scope="session")
def large_file(tmp_path_factory):
    """A 200 MB file of pseudo-random bytes (incompressible), and its sha256."""
    path = tmp_path_factory.mktemp("large") / "weights.bin"
    digest = hashlib.sha256()
    rng = random.Random(1234)
    block = rng.randbytes(1024 * 1024)
    with open(path, "wb") as handle:
        for index in range(LARGE_SIZE // len(block)):
            chunk = index.to_bytes(8, "big") + block[8:]  # every MiB differs
            digest.update(chunk)
            handle.write(chunk)
    return path, digest.hexdigest()


@pytest.mark.slow
def test_200mb_download_has_bounded_memory(store, make_checkpoint, alice_api, large_file):
    path, expected_sha = large_file
    checkpoint = make_checkpoint(store, {"config.yaml": b"lr: 0.1\n"})
    store.put_file(checkpoint.uuid, "weights.bin", path)

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download")
        assert response.status_code == 200
        total, member_sha = hash_tar_stream(response.streaming_content)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    assert total == int(response["Content-Length"])
    assert total > LARGE_SIZE
    assert member_sha == expected_sha
    assert peak < MEMORY_BUDGET, f"peak grew by {peak / 2**20:.1f} MiB"
    # Free the test servers' memory for the tests that follow (and delete a big object).
    assert get_backend(store.config).delete_checkpoints([str(checkpoint.uuid)]).ok


def hash_tar_stream(chunks) -> tuple[int, str]:
    """Total bytes of a streamed tar and the sha256 of its ``weights.bin`` member.

    Uses tarfile's stream mode over the chunks, so nothing is held in memory.
    """
    stream = ChunkStream(chunks)
    digest = hashlib.sha256()
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if member.name == "weights.bin":
                source = archive.extractfile(member)
                while piece := source.read(1024 * 1024):
                    digest.update(piece)
    while stream.read(1024 * 1024):
        pass
    return stream.total, digest.hexdigest()


class ChunkStream:
    """A read()-able view of an iterator of byte chunks."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.pending = b""
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.total += len(chunk)
            self.pending += chunk
        if size < 0:
            size = len(self.pending)
        data, self.pending = self.pending[:size], self.pending[size:]
        return data
