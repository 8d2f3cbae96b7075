"""Benchmark 3: downloads through gunicorn from shared_fs vs ``cat`` and ``tar | cat``.

Two checkpoints on a temp shared_fs: one 1 GiB file, and 1 GiB in ten files. Files are
read once before timing, so both sides read from the page cache. curl drains the HTTP
responses to /dev/null; throughput is bytes over wall-clock seconds (process start
included on both sides). Peak RSS is the gunicorn worker's VmHWM after all downloads.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.common import MIB, Result, median, peak_rss_mib
from bench.data import bench_user, create_experiment, shared_fs_storage
from bench.server import Server, gunicorn
from experiments.models import Checkpoint

FILE_TARGET = 0.5
TAR_TARGET = 0.7
RSS_TARGET_MIB = 150
TAR_FILES = 10


def write_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data (one random MiB repeated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        remaining = size
        while remaining > 0:
            remaining -= out.write(block[: min(MIB, remaining)])


def make_checkpoint(trial, root: Path, files: dict[str, int], steps: int) -> Checkpoint:
    """A checkpoint row and its files under ``root/<uuid>/``."""
    checkpoint = Checkpoint.objects.create(
        trial=trial, steps_completed=steps, resources=files, size_bytes=sum(files.values())
    )
    for relative, size in files.items():
        write_file(root / str(checkpoint.uuid) / relative, size)
    return checkpoint


def ten_files(total: int) -> dict[str, int]:
    """``TAR_FILES`` file sizes adding up to ``total`` bytes."""
    size = total // TAR_FILES
    sizes = {f"shard-{i:02d}.bin": size for i in range(TAR_FILES - 1)}
    sizes[f"shard-{TAR_FILES - 1:02d}.bin"] = total - size * (TAR_FILES - 1)
    return sizes


def shell_seconds(command: list[str] | str) -> float:
    """Wall-clock seconds of one command (``str`` runs through the shell)."""
    start = time.perf_counter()
    subprocess.run(command, shell=isinstance(command, str), check=True)
    return time.perf_counter() - start


def curl_seconds(url: str, token: str, expected: int) -> float:
    """Download ``url`` to /dev/null with curl; seconds, checking every byte arrived."""
    start = time.perf_counter()
    completed = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
        + ["-H", f"Authorization: Token {token}", url],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    status, size = completed.stdout.split()
    if status != "200" or int(size) < expected:
        raise RuntimeError(f"{url}: HTTP {status}, {size} of {expected} bytes")
    return seconds


def compare(http, baseline, runs: int) -> tuple[list[float], list[float]]:
    """Alternate HTTP and baseline runs (one untimed warm-up each)."""
    http()
    baseline()
    http_times, base_times = [], []
    for _ in range(runs):
        http_times.append(http())
        base_times.append(baseline())
    return http_times, base_times


def throughput_result(name, size, http_times, base_times, target) -> Result:
    """Median throughputs (MiB/s) and their ratio as a Result."""
    http_rate = size / MIB / median(http_times)
    base_rate = size / MIB / median(base_times)
    ratio = median(base_times) / median(http_times)
    return Result(
        "3 downloads",
        name,
        round(http_rate),
        "MiB/s",
        baseline=round(base_rate),
        ratio=ratio,
        target=f">= {target:g}x",
        met=ratio >= target,
        detail={
            "bytes": size,
            "http_s": [round(t, 3) for t in http_times],
            "baseline_s": [round(t, 3) for t in base_times],
        },
    )


def run(env: dict[str, str], work: Path, size: int, runs: int) -> list[Result]:
    """Single file, tar of ten files, and the worker's peak RSS."""
    root = work / "shared_fs"
    root.mkdir(parents=True, exist_ok=True)
    experiment = create_experiment("downloads", shared_fs_storage("bench-fs", str(root)), 1)
    trial = experiment.trials.get()
    single = make_checkpoint(trial, root, {"state-dict.pth": size}, 100)
    sharded = make_checkpoint(trial, root, ten_files(size), 200)
    _user, token = bench_user()
    single_path = root / str(single.uuid) / "state-dict.pth"
    sharded_dir = root / str(sharded.uuid)
    with gunicorn(env, work, workers=1, threads=4) as server:
        rss_idle = warm_up(server, token, single)
        file_times, cat_times = compare(
            lambda: curl_seconds(
                f"{server.url}/api/v1/checkpoints/{single.uuid}/files/state-dict.pth", token, size
            ),
            lambda: shell_seconds(f"cat '{single_path}' > /dev/null"),
            runs,
        )
        tar_times, tarcat_times = compare(
            lambda: curl_seconds(
                f"{server.url}/api/v1/checkpoints/{sharded.uuid}/download?format=tar", token, size
            ),
            lambda: shell_seconds(f"tar cf - -C '{sharded_dir}' . | cat > /dev/null"),
            runs,
        )
        rss_peak = server.worker_peak_rss_mib()
    gib = f"{size / MIB / 1024:g} GiB"
    return [
        throughput_result(f"one {gib} file vs cat", size, file_times, cat_times, FILE_TARGET),
        throughput_result(
            f"tar of {gib} in {TAR_FILES} files vs tar | cat",
            size,
            tar_times,
            tarcat_times,
            TAR_TARGET,
        ),
        Result(
            "3 downloads",
            "gunicorn worker peak RSS (VmHWM)",
            round(rss_peak, 1),
            "MiB",
            target=f"< {RSS_TARGET_MIB} MiB",
            met=rss_peak < RSS_TARGET_MIB,
            detail={"after_warm_up_mib": round(rss_idle, 1)},
        ),
    ]


def warm_up(server: Server, token: str, checkpoint: Checkpoint) -> float:
    """One small ranged request, so the worker has booted and imported everything.

    Returns the worker's VmHWM at that point (its footprint before any big download).
    """
    subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-r", "0-1023"]
        + ["-H", f"Authorization: Token {token}"]
        + [f"{server.url}/api/v1/checkpoints/{checkpoint.uuid}/files/state-dict.pth"],
        check=True,
    )
    return max(peak_rss_mib(pid) for pid in server.worker_pids())
