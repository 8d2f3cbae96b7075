"""Benchmark 3: downloads through gunicorn from shared_fs vs ``cat``, ``tar | cat``, nginx
and ``curl | tar x``.

Two checkpoints on a temp shared_fs: one 1 GiB file, and 1 GiB in ten files. Files are
read once before timing, so both sides read from the page cache. curl drains the HTTP
responses to /dev/null; throughput is bytes over wall-clock seconds (process start
included on both sides). Peak RSS is the gunicorn worker's VmHWM after all downloads.

Two more pairs, each alternating with its baseline in the same run:

- a single 256 MiB file through gunicorn (``GET checkpoints/{uuid}/files/{path}``) vs
  nginx's ``sendfile`` of the same file (an nginx started on the shared_fs root; skipped,
  and said so, when no ``nginx`` is installed);
- ``ckpt checkpoint download`` of the ten-file checkpoint (``ckptweb.client.cli.main``
  imported from this checkout) vs ``curl URL | tar x`` of the same archive, both extracting
  into an empty directory on the same disk (removed between runs, untimed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import (
    MIB,
    PYTHON,
    REPO,
    Result,
    free_port,
    median,
    peak_rss_mib,
    start_process,
    stop_process,
    wait_for_port,
)
from bench.data import bench_user, create_experiment, shared_fs_storage
from bench.server import Server, gunicorn
from experiments.models import Checkpoint

FILE_TARGET = 0.5
TAR_TARGET = 0.7
RSS_TARGET_MIB = 150
TAR_FILES = 10
NGINX_TARGET = 0.8
NGINX_FILE_BYTES = 256 * MIB
CLIENT_TARGET = 0.8
#: ``ckpt`` as its console script runs it, but importing this checkout's ``ckptweb``.
CKPT_MAIN = (
    "import sys; from ckptweb.client.cli import main; sys.argv[0] = 'ckpt'; sys.exit(main())"
)


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
    """Single file, tar of ten files, the worker's peak RSS, 256 MiB vs nginx, and
    ``ckpt checkpoint download`` vs ``curl | tar x``."""
    root = work / "shared_fs"
    root.mkdir(parents=True, exist_ok=True)
    experiment = create_experiment("downloads", shared_fs_storage("bench-fs", str(root)), 1)
    trial = experiment.trials.get()
    single = make_checkpoint(trial, root, {"state-dict.pth": size}, 100)
    sharded = make_checkpoint(trial, root, ten_files(size), 200)
    medium = make_checkpoint(trial, root, {"model.bin": NGINX_FILE_BYTES}, 300)
    _user, token = bench_user()
    single_path = root / str(single.uuid) / "state-dict.pth"
    sharded_dir = root / str(sharded.uuid)
    results = []
    with gunicorn(env, work, workers=1, threads=4) as server:
        rss_idle = warm_up(server, token, single)
        file_times, cat_times = compare(
            lambda: curl_seconds(
                f"{server.url}/api/v1/checkpoints/{single.uuid}/files/state-dict.pth", token, size
            ),
            lambda: shell_seconds(f"cat '{single_path}' > /dev/null"),
            runs,
        )
        tar_url = f"{server.url}/api/v1/checkpoints/{sharded.uuid}/download?format=tar"
        tar_times, tarcat_times = compare(
            lambda: curl_seconds(tar_url, token, size),
            lambda: shell_seconds(f"tar cf - -C '{sharded_dir}' . | cat > /dev/null"),
            runs,
        )
        rss_peak = server.worker_peak_rss_mib()
        results += nginx_comparison(server, token, root, medium, work, max(runs, 7))
        results.append(client_comparison(server, token, sharded, tar_url, work, size, runs))
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
        *results,
    ]


def nginx_comparison(server, token, root: Path, checkpoint, work: Path, runs: int) -> list:
    """One 256 MiB file through gunicorn vs nginx's sendfile of it (none without nginx)."""
    nginx = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()),
        None,
    )
    if nginx is None:
        return []
    relative = f"{checkpoint.uuid}/model.bin"
    with nginx_server(nginx, root, work) as nginx_url:
        http_times, base_times = compare(
            lambda: curl_seconds(
                f"{server.url}/api/v1/checkpoints/{relative.replace('/', '/files/', 1)}",
                token,
                NGINX_FILE_BYTES,
            ),
            lambda: curl_seconds(f"{nginx_url}/{relative}", token, NGINX_FILE_BYTES),
            runs,
        )
    return [
        throughput_result(
            "one 256 MiB file vs nginx sendfile",
            NGINX_FILE_BYTES,
            http_times,
            base_times,
            NGINX_TARGET,
        )
    ]


class nginx_server:  # noqa: N801 - used as a context manager, like ``gunicorn``
    """nginx (foreground, one worker, sendfile on) serving ``root`` on a free port."""

    def __init__(self, binary: str, root: Path, work: Path):
        self.binary, self.root, self.work = binary, root, work / "nginx"

    def __enter__(self) -> str:
        self.work.mkdir(exist_ok=True)
        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""  # the temp dir is private to us
        config = self.work / "nginx.conf"
        config.write_text(
            f"{user}\nworker_processes 1;\ndaemon off;\npid {self.work}/nginx.pid;\n"
            f"error_log {self.work}/error.log;\nevents {{ worker_connections 64; }}\n"
            "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
            f"  client_body_temp_path {self.work};\n  proxy_temp_path {self.work};\n"
            f"  fastcgi_temp_path {self.work};\n  uwsgi_temp_path {self.work};\n"
            f"  scgi_temp_path {self.work};\n"
            f"  server {{ listen 127.0.0.1:{port}; root {self.root}; }}\n}}\n"
        )
        args = [self.binary, "-p", str(self.work), "-c", str(config)]
        self.process = start_process(args, dict(os.environ), self.work / "stdout.log")
        wait_for_port(port, self.process)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        stop_process(self.process)


def client_comparison(server, token, checkpoint, tar_url, work: Path, size: int, runs: int):
    """``ckpt checkpoint download`` vs ``curl URL | tar x`` of the same archive."""
    client_out, curl_out = work / "client-out", work / "curl-out"
    env = {**os.environ, "CKPTWEB_URL": server.url, "CKPTWEB_TOKEN": token}
    uuid = str(checkpoint.uuid)
    expected = checkpoint.resources

    def check(directory: Path) -> None:
        found = {p.name: p.stat().st_size for p in directory.iterdir()}
        if found != expected:
            raise RuntimeError(f"{directory}: extracted {found}, expected {expected}")

    def client() -> float:
        shutil.rmtree(client_out, ignore_errors=True)
        start = time.perf_counter()
        completed = subprocess.run(
            [PYTHON, "-c", CKPT_MAIN, "checkpoint", "download", uuid, "-o", str(client_out)],
            env=env,
            cwd=REPO,  # this checkout's client, whatever ``ckpt`` is installed
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if completed.returncode:
            raise RuntimeError(f"ckpt checkpoint download failed: {completed.stderr}")
        check(client_out / uuid)
        shutil.rmtree(client_out, ignore_errors=True)
        return seconds

    def curl_tar() -> float:
        shutil.rmtree(curl_out, ignore_errors=True)
        curl_out.mkdir()
        seconds = shell_seconds(
            f"curl -sSf -H 'Authorization: Token {token}' '{tar_url}' | tar xf - -C '{curl_out}'"
        )
        check(curl_out)
        shutil.rmtree(curl_out, ignore_errors=True)
        return seconds

    client_times, curl_times = compare(client, curl_tar, runs)
    gib = f"{size / MIB / 1024:g} GiB"
    return throughput_result(
        f"ckpt checkpoint download of {gib} in {TAR_FILES} files vs curl | tar x",
        size,
        client_times,
        curl_times,
        CLIENT_TARGET,
    )


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
