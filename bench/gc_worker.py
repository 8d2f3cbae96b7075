"""Benchmark 7: GC throughput — a real Celery worker on PostgreSQL deletes checkpoints.

For each size, two experiments of ``size`` COMPLETED checkpoints (rows generated in
PostgreSQL, one 64-byte file each): one on shared_fs (files in the temp dir), one on S3
(a moto ``ThreadedMotoServer`` on 127.0.0.1, objects put straight into moto's backend,
with ``s3_gc``'s sorted listing index). Setting the policy to 0/0/0
(``runs.set_gc_policy``) enqueues the GC run on Redis; a Celery worker started like
``make worker`` (without ``--beat``) runs it. Measured: checkpoints per second from the
run's ``started_at`` to ``finished_at`` (the worker's own clock, excluding queue pickup),
and for S3 the HTTP requests moto received per checkpoint, counted at moto's WSGI app.
"""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path

from django.db import connection

from bench import s3_gc
from bench.common import PYTHON, Result, curve, size_label, start_process, stop_process
from bench.data import populate, shared_fs_storage
from experiments.gc import runs
from experiments.gc.retention import Policy
from experiments.models import Checkpoint, GCRun
from storage.backends import get_backend

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10")
FILE = "state-dict.pth"
DELETE_ALL = {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 0}
TIMEOUT = 3600


def operation(environ: dict) -> str:
    """The S3 operation of one request to moto, from its method and query string."""
    method, query = environ["REQUEST_METHOD"], environ.get("QUERY_STRING", "")
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "GET" and "list-type=2" in query:
        return "ListObjectsV2"
    if method == "GET" and environ.get("PATH_INFO", "/").strip("/").count("/") == 0:
        return "ListObjects"
    return {"GET": "GetObject", "DELETE": "DeleteObject", "PUT": "PutObject"}.get(method, method)


def count_moto_requests(counts: collections.Counter) -> None:
    """Make every ThreadedMotoServer started from now on count its requests in ``counts``."""
    from moto.moto_server import threaded_moto_server

    original = threaded_moto_server.DomainDispatcherApplication

    def counting_app(*args, **kwargs):
        app = original(*args, **kwargs)

        def counted(environ, start_response):
            counts[operation(environ)] += 1
            return app(environ, start_response)

        return counted

    threaded_moto_server.DomainDispatcherApplication = counting_app


def start_worker(env: dict[str, str], work: Path):
    """A Celery worker on the bench database and the bench broker (queue purged first)."""
    worker_env = {**env, "CELERY_BROKER_URL": BROKER}
    celery = [PYTHON, "-m", "celery", "-A", "ckptweb"]
    start_process([*celery, "purge", "-f"], worker_env, work / "celery-purge.log").wait(60)
    args = [*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2"]
    return start_process(args, worker_env, work / "celery-worker.log")


def enqueue_to_broker() -> None:
    """Send this process's tasks to the broker (the bench process runs without one)."""
    from ckptweb.celery import app

    app.conf.update(broker_url=BROKER, task_always_eager=False)


def generate(name: str, storage, size: int) -> tuple:
    """An experiment of ``size`` checkpoints with one small file each; (experiment, uuids)."""
    made = populate(name, storage, max(1, size // 100), min(size, 100), seed=0.3)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Checkpoint._meta.db_table} SET resources = %s::jsonb, size_bytes = 64 "
            "WHERE experiment_id = %s",
            [f'{{"{FILE}": 64}}', made.id],
        )
    uuids = list(Checkpoint.objects.filter(experiment_id=made.id).values_list("uuid", flat=True))
    return made, [str(u) for u in uuids]


def wait_for(run_id: int) -> GCRun:
    """The GC run once it has finished (polls the database)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        run = GCRun.objects.get(pk=run_id)
        if run.finished_at is not None:
            return run
        time.sleep(0.5)
    raise RuntimeError(f"GC run {run_id} did not finish in {TIMEOUT} s")


def collect(experiment_id: int, size: int, counts: collections.Counter) -> tuple[float, dict]:
    """Start the 0/0/0 run, wait for it, check it deleted everything; (seconds, requests)."""
    from experiments.models import Experiment

    experiment = Experiment.objects.get(pk=experiment_id)
    counts.clear()
    run = runs.set_gc_policy(experiment, Policy(**DELETE_ALL))
    run = wait_for(run.pk)
    requests = dict(counts)
    deleted = Checkpoint.objects.filter(experiment_id=experiment_id, state="DELETED").count()
    if run.state != "SUCCEEDED" or deleted != size:
        raise RuntimeError(f"GC run {run.pk}: {run.state}, {deleted}/{size} deleted: {run.errors}")
    return (run.finished_at - run.started_at).total_seconds(), requests


def result(kind: str, size: int, seconds: float, requests: dict | None) -> list[Result]:
    """Checkpoints per second (and, for S3, requests per checkpoint) of one run."""
    label = size_label(size)
    rows = [
        Result(
            "7 GC worker",
            f"GC {kind}: delete {label} checkpoints (Celery worker, PostgreSQL)",
            round(size / seconds),
            "ckpt/s",
            detail={"seconds": round(seconds, 2), **curve(f"GC {kind} (s)", size, seconds)},
        )
    ]
    if requests is not None:
        total = sum(requests.values())
        rows.append(
            Result(
                "7 GC worker",
                f"GC {kind} @ {label}: storage requests per checkpoint",
                round(total / size, 4),
                "req/ckpt",
                detail={"requests": requests},
            )
        )
    return rows


def run(env: dict[str, str], work: Path, sizes: list[int]) -> list[Result]:
    """Delete each size of checkpoints on shared_fs and on S3 with a real worker."""
    counts: collections.Counter = collections.Counter()
    count_moto_requests(counts)
    server = s3_gc.start_moto()
    worker = start_worker(env, work)
    results: list[Result] = []
    try:
        enqueue_to_broker()
        host, port = server.get_host_and_port()
        s3 = s3_gc.s3_storage(f"http://{host}:{port}")
        backend = get_backend(s3)
        backend.client.create_bucket(Bucket=s3_gc.BUCKET)
        moto = s3_gc.moto_backend()
        for size in sizes:
            root = work / f"gc_fs_{size}"
            made, uuids = generate(
                f"gc-fs-{size}", shared_fs_storage(f"gc-fs-{size}", str(root)), size
            )
            for name in uuids:
                (root / name).mkdir(parents=True)
                (root / name / FILE).write_bytes(b"x" * 64)
            seconds, _ = collect(made.id, size, counts)
            if any(root.iterdir()):
                raise RuntimeError(f"shared_fs GC left files under {root}")
            results += result("shared_fs", size, seconds, None)
            made, uuids = generate(f"gc-s3-{size}", s3, size)
            for name in uuids:
                moto.put_object(s3_gc.BUCKET, backend.object_key(name, FILE), b"x" * 64)
            seconds, requests = collect(made.id, size, counts)
            results += result("S3 (moto)", size, seconds, requests)
    finally:
        stop_process(worker)
        server.stop()
    return results
