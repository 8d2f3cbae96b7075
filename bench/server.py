"""A gunicorn serving ckptweb on 127.0.0.1 for the download and ingest benchmarks.

Started like ``make run`` starts it (gthread worker, threads), on a free port, with the
bench database and a temp data dir; always stopped, even when a benchmark fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    PYTHON,
    child_pids,
    free_port,
    peak_rss_mib,
    start_process,
    stop_process,
    wait_for_port,
)


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its base URL, master pid and log file."""

    url: str
    master_pid: int
    log: Path

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the master)."""
        return child_pids(self.master_pid)

    def warm_up(self, request, rounds: int = 3) -> int:
        """Call ``request()`` from two threads per worker at once, ``rounds`` times; returns
        how many calls were made. Each worker imports the views on its first request and
        gunicorn cannot address a worker, so concurrent calls are how every worker gets one
        before the timing starts (one call warmed one of the two)."""
        threads = 2 * max(1, len(self.worker_pids()))
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(rounds):
                list(pool.map(lambda _: request(), range(threads)))
        return rounds * threads

    def worker_peak_rss_mib(self) -> float:
        """The largest VmHWM among the workers, in MiB."""
        return max(peak_rss_mib(pid) for pid in self.worker_pids())


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], log_dir: Path, workers: int = 1, threads: int = 4
) -> Iterator[Server]:
    """Serve ckptweb with gunicorn for the duration of the ``with`` block."""
    port = free_port()
    log = log_dir / f"gunicorn-{port}.log"
    args = [
        PYTHON,
        "-m",
        "gunicorn",
        "ckptweb.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "300",
        "--keep-alive",
        "30",
        "--access-logfile",  # as ``make run``
        "-",
    ]
    process = start_process(args, env, log)
    try:
        wait_for_port(port, process)
        yield Server(f"http://127.0.0.1:{port}", process.pid, log)
    finally:
        stop_process(process)
