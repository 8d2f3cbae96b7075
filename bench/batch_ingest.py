"""Benchmark 6: reporting checkpoints in batches (``POST trials/{id}/checkpoints:batch``).

``CLIENTS`` concurrent clients (threads, each a keep-alive ``requests.Session``) send
``size`` checkpoints in batches of ``BATCH`` (the server's limit) against gunicorn started
like ``make run`` (2 workers x 4 threads). Each item has a uuid, two files and a little
metadata, as the example training script sends. The JSON bodies are encoded before the
clock starts (a training job encodes on its own machine), so the figure is the server's
and PostgreSQL's work, plus HTTP on loopback.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.common import Result, rate_result, size_label
from bench.data import bench_user, reporting_experiment
from bench.server import gunicorn
from experiments.batch import MAX_BATCH
from experiments.models import Checkpoint

BATCH = MAX_BATCH
TRIALS = 10
CLIENTS = 4
TARGET = 5000


def bodies(trial_ids: list[int], size: int) -> list[tuple[int, bytes]]:
    """(trial id, encoded body) of every batch: ``size`` checkpoints in all."""
    batches = []
    for start in range(0, size, BATCH):
        trial_id = trial_ids[(start // BATCH) % len(trial_ids)]
        items = [
            {
                "uuid": str(uuid.uuid4()),
                "steps_completed": (start + i) * 10,
                "resources": {"state-dict.pth": 52_428_800, "metadata.json": 1_024},
                "metadata": {"framework": "torch-2.3", "steps": start + i},
            }
            for i in range(min(BATCH, size - start))
        ]
        batches.append((trial_id, json.dumps({"items": items}).encode()))
    return batches


def client(url: str, token: str, batches: list[tuple[int, bytes]]) -> None:
    """One client: POST its batches in order; raises unless each answers 201."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Token {token}"
        session.headers["Content-Type"] = "application/json"
        for trial_id, body in batches:
            response = session.post(f"{url}/api/v1/trials/{trial_id}/checkpoints:batch", data=body)
            if response.status_code != 201:
                raise RuntimeError(f"batch answered {response.status_code}: {response.text[:200]}")


def run(env: dict[str, str], work, size: int) -> list[Result]:
    """Report ``size`` checkpoints in batches; checkpoints per second."""
    experiment, trial_ids = reporting_experiment(f"batch-{size}", work / "batch_fs", TRIALS)
    _user, token = bench_user()
    batches = bodies(trial_ids, size)
    with gunicorn(env, work, workers=2, threads=4) as server:
        warm_up = server.warm_up(lambda: client(server.url, token, bodies(trial_ids[:1], 10)))
        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            parts = [batches[k::CLIENTS] for k in range(CLIENTS)]
            list(pool.map(lambda part: client(server.url, token, part), parts))
        seconds = time.perf_counter() - start
    stored = Checkpoint.objects.filter(experiment=experiment).count()
    if stored != size + 10 * warm_up:
        raise RuntimeError(f"{stored} checkpoints stored, expected {size + 10 * warm_up}")
    return [
        rate_result(
            "6 batch",
            f"batch ingest, {size_label(size)} checkpoints ({CLIENTS} clients, {BATCH}/request)",
            size,
            seconds,
            TARGET,
            "batch ingest, 4 clients (s)",
            requests=len(batches),
        )
    ]


def against_ceiling(batch: Result, ceiling: Result) -> Result:
    """A batch rate next to the raw-INSERT ceiling of the same run: on a shared machine the
    absolute rate follows the load, the ratio much less."""
    return Result(
        "6 batch",
        f"{batch.name} vs the raw INSERT ceiling",
        batch.value,
        "ckpt/s",
        baseline=ceiling.value,
        ratio=batch.value / ceiling.value if ceiling.value else None,
        target="(same run)",
    )
