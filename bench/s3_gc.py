"""Benchmark 4: deleting checkpoints' files on S3 (moto server): batched vs per file.

A moto ThreadedMotoServer on 127.0.0.1 holds N checkpoints x 3 files (loaded straight into
moto's in-memory backend, which takes seconds instead of N x 3 PUTs). Two ways of deleting
are timed on disjoint samples of checkpoints and counted with a botocore ``before-send``
hook:

* **batched** — ``S3Backend.delete_checkpoints`` called the way ``experiments.gc.execute`` calls it
  (``execute.batch_size()`` checkpoints per call, in uuid order), on all N checkpoints;
* **per file** — one ``DeleteObject`` per file, the keys taken from ``resources``.

moto answers ``ListObjects`` by scanning every key of the bucket (``moto/s3/models.py``
``list_objects``: O(objects) per request; S3 is not like that), so at 30,000 objects each
prefix listing costs ~160 ms of moto's CPU and says nothing about our code. The harness
gives moto a sorted key index (``indexed_listing``) so that listing a prefix, or a page
after ``StartAfter``, costs what an HTTP request costs. On this machine every moto request
costs 10-40 ms, so timing all
10k x 3 files one file at a time would take ~20 minutes: that way is timed on samples and
scaled to N (it is linear in the number of files).
"""

from __future__ import annotations

import bisect
import collections
import logging
import time
import uuid

from bench.common import Result, median
from bench.data import create_experiment
from experiments.gc import execute
from storage.backends import get_backend
from storage.models import StorageConfig

TARGET = 10.0
BUCKET = "ckptweb-bench"
PREFIX = "checkpoints"
FILES = ("state-dict.pth", "metadata.json", "code/model_def.py")


class RequestCounter:
    """Counts the HTTP requests a boto3 client sends, by operation."""

    def __init__(self, client):
        self.counts: collections.Counter[str] = collections.Counter()
        client.meta.events.register("before-send.s3", self)

    def __call__(self, event_name: str, **kwargs):
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def take(self) -> dict[str, int]:
        """The counts since the last call, then reset."""
        counts = dict(self.counts)
        self.counts.clear()
        return counts


def indexed_listing() -> None:
    """Give moto's ListObjects a sorted key index per bucket (see the module docstring).

    The index is rebuilt whenever the bucket's key count changed; keys deleted since are
    skipped, so results are exact for this harness (it never replaces one key by another
    between two listings).
    """
    from moto.s3.models import FakeBucket, S3Backend

    original = S3Backend.list_objects
    indexes: dict[int, tuple[int, list[str]]] = {}

    class Matching:
        def __init__(self, keys: dict):
            self.keys = keys

    def keys_from(bucket, first: int, prefix: str, limit: int | None = None) -> Matching:
        """The bucket's live keys in name order from index ``first`` while they match."""
        matching = {}
        for name in sorted_names(bucket)[first:]:
            if prefix and not name.startswith(prefix):
                break
            key = bucket.keys.get(name)
            if key is not None:
                matching[name] = key
                if limit is not None and len(matching) > limit:
                    break
        return Matching(matching)

    def sorted_names(bucket) -> list[str]:
        count, names = indexes.get(id(bucket), (-1, []))
        if count != len(bucket.keys):
            names = sorted(bucket.keys.keys())
            indexes[id(bucket)] = (len(bucket.keys), names)
        return names

    def list_objects(self, bucket, prefix, delimiter, marker, max_keys):
        if prefix and isinstance(bucket, FakeBucket):
            bucket = keys_from(bucket, bisect.bisect_left(sorted_names(bucket), prefix), prefix)
        return original(self, bucket, prefix, delimiter, marker, max_keys)

    original_v2 = S3Backend.list_objects_v2

    def list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys):
        # A StartAfter page without delimiter: hand moto just the keys that page can hold
        # (S3 seeks to StartAfter; moto would scan and sort the whole bucket per request).
        if (
            start_after
            and not delimiter
            and not continuation_token
            and isinstance(bucket, FakeBucket)
        ):
            first = bisect.bisect_right(sorted_names(bucket), start_after)
            bucket = keys_from(bucket, first, prefix, max_keys or 1000)
        return original_v2(
            self, bucket, prefix, delimiter, continuation_token, start_after, max_keys
        )

    S3Backend.list_objects = list_objects
    S3Backend.list_objects_v2 = list_objects_v2


def start_moto():
    """A ThreadedMotoServer on a free port of 127.0.0.1, quiet, with the listing index."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    indexed_listing()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def moto_backend():
    """moto's in-memory S3 of the default account."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def s3_storage(endpoint: str) -> StorageConfig:
    """The StorageConfig of the moto bucket."""
    storage, _ = StorageConfig.objects.update_or_create(
        name="bench-s3",
        defaults={
            "type": "s3",
            "bucket": BUCKET,
            "prefix": PREFIX,
            "endpoint_url": endpoint,
            "access_key": "bench",
            "secret_key": "bench-secret",
        },
    )
    return storage


def populate(backend, checkpoints: int) -> list[str]:
    """Put ``checkpoints`` x 3 small objects straight into moto; their uuids."""
    uuids = [str(uuid.uuid4()) for _ in range(checkpoints)]
    s3 = moto_backend()
    for name in uuids:
        for relative in FILES:
            s3.put_object(BUCKET, backend.object_key(name, relative), b"x" * 64)
    return uuids


def delete_batched(backend, uuids: list[str]) -> None:
    """The GC's way: ``delete_checkpoints`` per ``execute.batch_size()`` checkpoints."""
    size = execute.batch_size()
    for start in range(0, len(uuids), size):
        result = backend.delete_checkpoints(uuids[start : start + size])
        if not result.ok:
            raise RuntimeError(f"batched delete failed: {list(result.errors.items())[:3]}")


def delete_per_file(backend, uuids: list[str]) -> None:
    """The naive way: one DeleteObject request per file."""
    for name in uuids:
        for relative in FILES:
            backend.client.delete_object(Bucket=BUCKET, Key=backend.object_key(name, relative))


def remaining_objects(backend, uuids: list[str]) -> int:
    """Objects still stored under the given checkpoints' prefixes."""
    s3 = moto_backend()
    bucket = s3.get_bucket(BUCKET)
    keys = {backend.object_key(name, relative) for name in uuids for relative in FILES}
    return sum(1 for key in keys if bucket.keys.get(key) is not None)


def timed_per_checkpoint(delete, backend, counter, uuids: list[str]) -> tuple[float, dict]:
    """Seconds per checkpoint of deleting ``uuids`` one way, and the requests it sent."""
    counter.take()
    start = time.perf_counter()
    delete(backend, uuids)
    seconds = time.perf_counter() - start
    if remaining_objects(backend, uuids):
        raise RuntimeError(f"{delete.__name__} left objects behind")
    return seconds / len(uuids), counter.take()


def run(checkpoints: int, batched_sample: int, per_file_sample: int, runs: int) -> list[Result]:
    """Batched vs per-file deletes of ``checkpoints`` x 3 files, timed on samples."""
    server = start_moto()
    try:
        host, port = server.get_host_and_port()
        storage = s3_storage(f"http://{host}:{port}")
        create_experiment("s3-gc", storage, 1)
        backend = get_backend(storage)
        backend.client.create_bucket(Bucket=BUCKET)
        counter = RequestCounter(backend.client)
        uuids = populate(backend, checkpoints)
        return measure(backend, counter, uuids, checkpoints, batched_sample, per_file_sample, runs)
    finally:
        server.stop()


def measure(backend, counter, uuids, checkpoints, batched_sample, per_file_sample, runs):
    """Batched: all ``checkpoints`` each run, in the GC's (uuid) order, freshly stored.
    Per file: a sample per run (the naive way takes ~25 minutes for all), scaled to N.

    ``batched_sample`` is kept for the caller's signature: batched deletes are measured
    whole, since ranged listings make their cost per checkpoint depend on how many go.
    """
    batched, per_file, batched_requests, per_file_requests = [], [], [], []
    batched_sample = checkpoints
    for index in range(runs):
        doomed = sorted(uuids if index == 0 else populate(backend, checkpoints))
        seconds, requests = timed_per_checkpoint(delete_batched, backend, counter, doomed)
        batched.append(seconds)
        batched_requests.append(requests)
        sample = populate(backend, per_file_sample)
        seconds, requests = timed_per_checkpoint(delete_per_file, backend, counter, sample)
        per_file.append(seconds)
        per_file_requests.append(requests)
    ratio = median(per_file) / median(batched)
    scaled = {
        "batched": per_checkpoint_requests(batched_requests[0], batched_sample, checkpoints),
        "per_file": per_checkpoint_requests(per_file_requests[0], per_file_sample, checkpoints),
    }
    label = f"{checkpoints:,} ckpts x {len(FILES)} files"
    return [
        Result(
            "4 S3 GC",
            f"delete {label}: batched vs per-file (s, scaled)",
            round(median(batched) * checkpoints, 1),
            "s",
            baseline=round(median(per_file) * checkpoints, 1),
            ratio=ratio,
            target=f">= {TARGET:g}x faster",
            met=ratio >= TARGET,
            detail={
                "runs": runs,
                "batched_sample": batched_sample,
                "per_file_sample": per_file_sample,
                "batched_ms_per_checkpoint": [round(s * 1000, 2) for s in batched],
                "per_file_ms_per_checkpoint": [round(s * 1000, 2) for s in per_file],
                "requests_in_first_sample": {
                    "batched": batched_requests[0],
                    "per_file": per_file_requests[0],
                },
                "requests_scaled_to_all": scaled,
                "gc_batch_size": execute.batch_size(),
            },
        ),
        Result(
            "4 S3 GC",
            "HTTP requests, batched: " + requests_text(scaled["batched"]),
            sum(scaled["batched"].values()),
            "requests",
            baseline=sum(scaled["per_file"].values()),
            ratio=sum(scaled["per_file"].values()) / sum(scaled["batched"].values()),
            target="(printed)",
        ),
    ]


def per_checkpoint_requests(counts: dict[str, int], sample: int, checkpoints: int) -> dict:
    """Request counts of a sample scaled to all checkpoints."""
    return {op: round(n * checkpoints / sample) for op, n in counts.items()}


def requests_text(counts: dict[str, int]) -> str:
    """``ListObjectsV2 10000 + DeleteObjects 100``."""
    return " + ".join(f"{op} {n:,}" for op, n in sorted(counts.items()))
