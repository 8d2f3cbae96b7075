"""Benchmark 5: reporting checkpoints one by one (``POST trials/{id}/checkpoints``).

``CLIENTS`` concurrent clients (threads, each a ``requests.Session`` with keep-alive, each
reporting sequentially like one training job) against gunicorn started like ``make run``
(2 workers x 4 threads). The checkpoints go round-robin to 10 trials, each with two files
in ``resources``. ``profile()`` adds where one report's time goes, in this process: its
SQL queries, Python function calls and the top of a cProfile (the ingest profile of
docs/PERFORMANCE.md).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from django.db import connection
from django.test import Client

from bench.common import Result, median, rate_result, size_label
from bench.data import bench_user, create_experiment, reporting_experiment, shared_fs_storage
from bench.server import gunicorn
from experiments.models import Checkpoint

TRIALS = 10
CLIENTS = 4
TARGET = 300
PROFILED = 200


def report(session: requests.Session, url: str, trial_id: int, steps: int) -> float:
    """POST one checkpoint; seconds it took. Raises unless it answers 201."""
    body = {
        "steps_completed": steps,
        "resources": {"state-dict.pth": 52_428_800, "metadata.json": 1_024},
        "metadata": {"framework": "torch-2.3", "steps": steps},
    }
    start = time.perf_counter()
    response = session.post(f"{url}/api/v1/trials/{trial_id}/checkpoints", json=body)
    seconds = time.perf_counter() - start
    if response.status_code != 201:
        raise RuntimeError(f"report answered {response.status_code}: {response.text[:200]}")
    return seconds


def client(url: str, token: str, trial_ids: list[int], indexes: range) -> list[float]:
    """One reporting client: a keep-alive session POSTing checkpoints ``indexes``."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Token {token}"
        return [
            report(session, url, trial_ids[i % TRIALS], (i // TRIALS + 2) * 100) for i in indexes
        ]


def run(env: dict[str, str], work, count: int) -> list[Result]:
    """Report ``count`` checkpoints; checkpoints per second and per-request latency."""
    experiment, trial_ids = reporting_experiment(f"ingest-{count}", work / "ingest_fs", TRIALS)
    _user, token = bench_user()
    with gunicorn(env, work, workers=2, threads=4) as server:

        def one_report() -> None:
            with requests.Session() as session:
                session.headers["Authorization"] = f"Token {token}"
                report(session, server.url, trial_ids[0], 1)

        warm_up = server.warm_up(one_report)  # every worker serves a report before timing
        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            parts = pool.map(
                lambda k: client(server.url, token, trial_ids, range(k, count, CLIENTS)),
                range(CLIENTS),
            )
            latencies = [seconds for part in parts for seconds in part]
        seconds = time.perf_counter() - start
    stored = Checkpoint.objects.filter(experiment=experiment).count()
    if stored != count + warm_up:
        raise RuntimeError(f"{stored} checkpoints stored, expected {count + warm_up}")
    p95 = statistics.quantiles(latencies, n=20)[-1]
    return [
        rate_result(
            "5 ingest",
            f"single reports, {size_label(count)} ({CLIENTS} keep-alive clients, gunicorn)",
            count,
            seconds,
            TARGET,
            "single reports, 4 clients (s)",
            median_ms=round(median(latencies) * 1000, 2),
            p95_ms=round(p95 * 1000, 2),
        )
    ]


def profile() -> dict:
    """One report's SQL queries and Python calls, and a cProfile of ``PROFILED`` reports."""
    experiment = create_experiment("ingest-profile", shared_fs_storage("bench-ingest", "/"), 1)
    trial_id = experiment.trials.get().id
    _user, token = bench_user()
    client = Client()

    def post(steps: int) -> None:
        body = {"steps_completed": steps, "resources": {"a.pth": 1, "b.json": 2}}
        response = client.post(
            f"/api/v1/trials/{trial_id}/checkpoints",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
        )
        if response.status_code != 201:
            raise RuntimeError(f"report answered {response.status_code}")

    post(0)
    # execute_wrapper sees every statement; CaptureQueriesContext around a test-client
    # request saw none (Django clears the query log when a request starts).
    queries = []

    def record(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        post(1)
    profiler = cProfile.Profile()
    start = time.process_time()
    profiler.enable()
    for steps in range(2, PROFILED + 2):
        post(steps)
    profiler.disable()
    cpu_ms = (time.process_time() - start) / PROFILED * 1000
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(r"ckptweb|experiments|rest_framework", 25)
    return {
        "single_report": {
            "queries": [sql[:160] for sql in queries],
            "python_calls_per_report": round(stats.total_calls / PROFILED),
            "cpu_ms_per_report_in_process_profiled": round(cpu_ms, 2),
            "cprofile_top": text.getvalue(),
        }
    }
