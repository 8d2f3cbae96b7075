"""Shared helpers of the benchmarks: timing, results, the bench database, subprocesses.

Nothing here imports Django at module level: ``bench.run`` must set ``DATABASE_URL``
and ``CKPTWEB_DATA_DIR`` before Django reads its settings.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_DB = os.environ.get("BENCH_DB", "ckptweb_bench")  # another name for parallel runs
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
BENCH_DATABASE_URL = f"{PG_SERVER}/{BENCH_DB}"
MIB = 1024 * 1024
GIB = 1024 * MIB


# --- timing ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    return statistics.median(values)


def time_runs(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def interleaved(
    subject: Callable[[], object], baseline: Callable[[], object], runs: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Time ``subject`` and ``baseline`` alternately, so load on this shared machine hits both."""
    for _ in range(warmup):
        subject()
        baseline()
    subject_times, baseline_times = [], []
    for _ in range(runs):
        subject_times.extend(time_runs(subject, 1, warmup=0))
        baseline_times.extend(time_runs(baseline, 1, warmup=0))
    return subject_times, baseline_times


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for tables."""
    return round(seconds * 1000, 1)


# --- sizes of the cost curve ---------------------------------------------------------------

SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str) -> int:
    """``"10k"`` -> 10000, ``"1M"`` -> 1000000, ``"500"`` -> 500 (ValueError otherwise)."""
    text = text.strip().lower()
    factor = SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in SUFFIXES else text
    if not number.isdigit() or int(number) == 0:
        raise ValueError(f"size {text!r}: use a positive number with an optional k or M")
    return int(number) * factor


def size_label(size: int) -> str:
    """10000 -> ``10k``, 1000000 -> ``1M``, 1500 -> ``1500``."""
    for suffix, factor in (("M", 1_000_000), ("k", 1_000)):
        if size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def curve(measure: str, size: int, y: float | None = None) -> dict:
    """The ``detail`` keys that put a result on the plotted cost curve of ``measure``.

    ``y`` is the plotted time when it is not the result's value (a rate plots the seconds
    the whole size took).
    """
    return {"curve": measure, "size": size, "y": y}


# --- results -----------------------------------------------------------------------------


@dataclass
class Result:
    """One line of the results table: a measured value, its baseline and its target."""

    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    detail: dict = field(default_factory=dict)

    def row(self) -> list[str]:
        """The cells of this result in the printed table."""
        verdict = {True: "met", False: "MISSED", None: "-"}[self.met]
        return [
            self.section,
            self.name,
            f"{self.value:g} {self.unit}",
            "" if self.baseline is None else f"{self.baseline:g} {self.unit}",
            "" if self.ratio is None else f"{self.ratio:.2f}x",
            self.target,
            verdict,
        ]

    def as_dict(self) -> dict:
        return asdict(self)


HEADER = ["section", "measure", "value", "baseline", "ratio", "target", "verdict"]


def rate_result(
    section: str, measure: str, count: int, seconds: float, target: int, curve_name: str, **detail
) -> Result:
    """``count`` checkpoints in ``seconds`` as checkpoints per second against ``target``;
    ``detail`` and the seconds go to results.json, the seconds also to the curve."""
    rate = round(count / seconds)
    return Result(
        section,
        measure,
        rate,
        "ckpt/s",
        target=f">= {target:,} ckpt/s",
        met=rate >= target,
        detail={
            "seconds": round(seconds, 2),
            **detail,
            **curve(curve_name, count, round(seconds, 2)),
        },
    )


def format_table(results: list[Result]) -> str:
    """Results as a Markdown table (it reads fine in a terminal, and pastes into docs)."""
    rows = [HEADER] + [result.row() for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), separator, *(line(row) for row in rows[1:])])


# --- the bench database ------------------------------------------------------------------


def _admin_connection():
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)


def drop_database() -> None:
    """Drop the bench database (ending its other sessions first); fine if it is absent."""
    with _admin_connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [BENCH_DB],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')


def create_database() -> None:
    """A fresh, empty bench database."""
    drop_database()
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def bench_environment(data_dir: Path) -> dict[str, str]:
    """Environment of this process and its subprocesses: bench db, temp data dir, no DEBUG."""
    return {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "CKPTWEB_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "ckptweb.settings",
        "SECRET_KEY": "bench-not-secret",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
    }


def manage(*args: str, env: dict[str, str]) -> str:
    """Run ``manage.py`` with ``args`` in a subprocess; its stdout, or CalledProcessError."""
    completed = subprocess.run(
        [PYTHON, str(REPO / "manage.py"), *args],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return completed.stdout


# --- subprocesses ------------------------------------------------------------------------

_children: list[subprocess.Popen] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``args`` in its own process group, logging to ``log``; stopped at exit."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _children.append(process)
    return process


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a process started by ``start_process`` and its children (TERM, then KILL)."""
    if process.poll() is None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    if process in _children:
        _children.remove(process)


@atexit.register
def stop_all_processes() -> None:
    """Leave no gunicorn behind, whatever happened."""
    for process in list(_children):
        stop_process(process, timeout=5)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Block until something accepts connections on ``port``; fail if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(child) for child in text)
    return children


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def machine() -> dict:
    """Cores, memory and load of this machine, for the results file."""
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
    }
