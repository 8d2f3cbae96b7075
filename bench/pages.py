"""Benchmark 2: the experiment page, its GC-counts fragment and the checkpoints API page.

Latency is the median of timed requests through the test Client (signed in with a session
for the page, a token for the API); the query count comes from one extra, untimed request
under CaptureQueriesContext (which turns on query logging, so it is not timed).
"""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import Result, curve, median, ms, parse_size, time_runs

TARGET_MS = 150


def page_client(user) -> Client:
    """A test Client with a signed-in session."""
    client = Client()
    client.force_login(user)
    return client


def endpoints(experiment_id: int, token: str) -> dict[str, tuple[str, dict]]:
    """Name -> (URL, extra headers) of what is measured."""
    return {
        "experiment page": (f"/experiments/{experiment_id}/", {}),
        # What the saved policy keeps and deletes: loaded by the page after it renders.
        "experiment page's GC counts (fragment)": (f"/experiments/{experiment_id}/gc/counts/", {}),
        "checkpoints API page": (
            f"/api/v1/experiments/{experiment_id}/checkpoints",
            {"HTTP_AUTHORIZATION": f"Token {token}"},
        ),
    }


def fetch(client: Client, url: str, headers: dict):
    """GET ``url``; raises unless it answers 200."""
    response = client.get(url, **headers)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    return response


def count_queries(client: Client, url: str, headers: dict) -> tuple[int, int]:
    """Number of SQL queries one request makes, and the size of its response."""
    with CaptureQueriesContext(connection) as queries:
        response = fetch(client, url, headers)
    return len(queries.captured_queries), len(response.content)


def measure(client: Client, url: str, headers: dict, runs: int) -> dict:
    """Median latency, every run and the query count of one URL."""
    seconds = time_runs(lambda: fetch(client, url, headers), runs)
    queries, size = count_queries(client, url, headers)
    return {
        "median_ms": ms(median(seconds)),
        "runs_ms": [ms(s) for s in seconds],
        "queries": queries,
        "bytes": size,
    }


def run(user, token: str, experiments: dict[str, int], runs: int) -> list[Result]:
    """Measure each endpoint at each size (``{"1k": id, "100k": id, …}``, smallest first)."""
    from experiments import summary
    from experiments.models import Experiment

    # The generated rows bypass the services: build each experiment's summary row first, as
    # ``manage.py rebuild_summaries`` would after a bulk load (not timed).
    for experiment in Experiment.objects.filter(pk__in=experiments.values()):
        summary.refresh(experiment)
    client = page_client(user)
    sizes = list(experiments)
    largest = sizes[-1]
    results = []
    for name in endpoints(0, token):
        measured = {
            size: measure(client, *endpoints(experiment_id, token)[name], runs)
            for size, experiment_id in experiments.items()
        }
        queries = {size: m["queries"] for size, m in measured.items()}
        same_queries = len(set(queries.values())) == 1
        for size in sizes:
            latency = measured[size]["median_ms"]
            target = f"<= {TARGET_MS} ms" if size == largest else ""
            results.append(
                Result(
                    "2 pages",
                    f"{name} @ {size} checkpoints",
                    latency,
                    "ms",
                    target=target,
                    met=latency <= TARGET_MS if size == largest else None,
                    detail={**measured[size], **curve(f"{name} (ms)", parse_size(size))},
                )
            )
        results.append(
            Result(
                "2 pages",
                f"{name}: queries " + " / ".join(f"{s}={q}" for s, q in queries.items()),
                queries[largest],
                "queries",
                target="same at every size",
                met=same_queries,
                detail=queries,
            )
        )
    return results
