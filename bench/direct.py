"""Benchmark 6: ``ckpt checkpoint download --direct`` vs the server's tar stream, on S3 (moto).

One checkpoint of 1 GiB in 8 files sits in a moto ThreadedMotoServer (put straight into
moto's backend). The same ``ckpt`` CLI downloads it twice per run, alternately: through
gunicorn's tar stream (the server reads every byte from moto and writes it to the
client), and ``--direct`` (the server only signs 8 URLs; the CLI fetches the files from
moto in 8 parallel ranged connections). Both extract into the archive's folder layout.

Measured per download: wall-clock seconds (throughput), and the CPU seconds the gunicorn
master and workers used, read from ``/proc/<pid>/stat`` (utime + stime) before and after.
Target: the direct download costs the server under 10% of the proxied one's CPU seconds.
moto's own CPU (it serves the bytes in both cases) is not counted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import GIB, MIB, PYTHON, REPO, Result, median
from bench.data import bench_user, create_experiment
from bench.server import Server, gunicorn
from experiments.models import Checkpoint

FILES = 8
CPU_TARGET = 0.10
CKPT = Path(PYTHON).with_name("ckpt")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (their own, not their children's), in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLOCK_TICKS


def server_pids(server: Server) -> list[int]:
    return [server.master_pid, *server.worker_pids()]


def seed(total: int) -> tuple[Checkpoint, object]:
    """The moto server, and a checkpoint of ``total`` bytes in ``FILES`` files on it."""
    from bench import s3_gc

    moto = s3_gc.start_moto()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    storage = s3_gc.s3_storage(endpoint)
    import boto3

    boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
        region_name="us-east-1",
    ).create_bucket(Bucket=s3_gc.BUCKET)
    experiment = create_experiment("bench-direct", storage, trials=1)
    size = total // FILES
    sizes = {f"shard-{i}.bin": size for i in range(FILES - 1)}
    sizes[f"shard-{FILES - 1}.bin"] = total - size * (FILES - 1)
    checkpoint = Checkpoint.objects.create(
        trial=experiment.trials.first(),
        steps_completed=1,
        resources=sizes,
        size_bytes=total,
    )
    from storage.backends import get_backend

    backend = get_backend(storage)
    s3 = s3_gc.moto_backend()
    block = os.urandom(MIB)
    for relative, length in sizes.items():
        data = (block * (length // MIB + 1))[:length]
        s3.put_object(s3_gc.BUCKET, backend.object_key(checkpoint.uuid, relative), data)
    return checkpoint, moto


def download(server: Server, token: str, uuid: str, target: Path, direct: bool) -> dict:
    """One ``ckpt checkpoint download``; wall seconds and the server's CPU seconds."""
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ, "CKPTWEB_URL": server.url, "CKPTWEB_TOKEN": token}
    args = [str(CKPT), "checkpoint", "download", uuid, "-o", str(target)]
    if direct:
        args.append("--direct")
    pids = server_pids(server)
    cpu_before = cpu_seconds(pids)
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=REPO, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(pids) - cpu_before
    downloaded = sum(p.stat().st_size for p in (target / uuid).iterdir())
    shutil.rmtree(target, ignore_errors=True)
    return {"seconds": seconds, "cpu": cpu, "bytes": downloaded}


def run(env: dict[str, str], work: Path, total: int = GIB, runs: int = 3) -> list[Result]:
    checkpoint, moto = seed(total)
    _user, token = bench_user()
    uuid = str(checkpoint.uuid)
    proxied, direct = [], []
    try:
        with gunicorn(env, work, workers=2, threads=4) as server:
            download(server, token, uuid, work / "warmup", direct=True)  # imports, pools
            for _ in range(runs):
                proxied.append(download(server, token, uuid, work / "proxied", direct=False))
                direct.append(download(server, token, uuid, work / "direct", direct=True))
    finally:
        moto.stop()
    for sample in proxied + direct:
        assert sample["bytes"] == total, sample
    p_seconds = median([s["seconds"] for s in proxied])
    d_seconds = median([s["seconds"] for s in direct])
    p_cpu = median([s["cpu"] for s in proxied])
    d_cpu = median([s["cpu"] for s in direct])
    gib = total / GIB
    detail = {"proxied": proxied, "direct": direct, "files": FILES, "bytes": total}
    return [
        Result(
            "direct",
            f"server CPU s, {gib:g} GiB in {FILES} files: --direct vs tar stream",
            round(d_cpu, 2),
            "s",
            baseline=round(p_cpu, 2),
            ratio=round(d_cpu / p_cpu, 3) if p_cpu else None,
            target=f"< {CPU_TARGET:.0%} of the tar stream's",
            met=d_cpu < CPU_TARGET * p_cpu,
            detail=detail,
        ),
        Result(
            "direct",
            f"download MiB/s, {gib:g} GiB: --direct vs tar stream",
            round(total / MIB / d_seconds, 1),
            "MiB/s",
            baseline=round(total / MIB / p_seconds, 1),
            ratio=round(p_seconds / d_seconds, 2),
            target="",
            met=None,
        ),
    ]
