"""Benchmark 9: ``ckpt checkpoint upload`` against its baselines in the same run (issue 26).

One checkpoint of 1 GiB in 8 files (``--quick``: 64 MiB) is uploaded, alternately with its
baseline, ``runs`` times; the medians are compared:

* **S3** (moto, over HTTP): ``ckpt checkpoint upload`` (ckptweb signs the PUT URLs, the CLI
  sends the files, in parts over 64 MiB, from ``DEFAULT_PARALLEL`` threads) vs boto3's own
  ``upload_file`` of the same files from the same number of threads, with the same part
  size and one connection per file. Target: at least 0.8× boto3's throughput.
* **shared_fs** (through the server: the CLI PUTs, gunicorn streams to disk) vs ``cp -r`` of
  the same files on the same disk. Target: at least 0.5× ``cp``'s throughput.

Every upload is checked: the checkpoint ends COMPLETED with every byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import GIB, MIB, PYTHON, REPO, Result, median
from bench.data import bench_user, create_experiment, shared_fs_storage
from bench.server import gunicorn
from ckptweb.client.upload import DEFAULT_PARALLEL
from experiments.choices import CheckpointState
from experiments.models import Checkpoint

FILES = 8
CKPT = Path(PYTHON).with_name("ckpt")
S3_TARGET = 0.8
FS_TARGET = 0.5


def seed_directory(root: Path, total: int) -> Path:
    """``total`` bytes of random data in ``FILES`` files under ``root/source``."""
    source = root / "source"
    source.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MIB)
    size = total // FILES
    for index in range(FILES):
        length = size if index < FILES - 1 else total - size * (FILES - 1)
        with open(source / f"shard-{index}.bin", "wb") as out:
            for _ in range(length // MIB):
                out.write(block)
            out.write(block[: length % MIB])
    return source


def ckpt_upload(server, token: str, source: Path, trial_id: int, steps: int) -> float:
    """Seconds of one ``ckpt checkpoint upload``; checks the checkpoint it made."""
    env = {**os.environ, "CKPTWEB_URL": server.url, "CKPTWEB_TOKEN": token}
    args = [str(CKPT), "checkpoint", "upload", str(source), "--trial", str(trial_id)]
    args += ["--steps", str(steps)]
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=REPO, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    checkpoint = Checkpoint.objects.get(trial_id=trial_id, steps_completed=steps)
    expected = sum(p.stat().st_size for p in source.iterdir())
    assert checkpoint.state == CheckpointState.COMPLETED, checkpoint.state
    assert checkpoint.size_bytes == expected, (checkpoint.size_bytes, expected)
    return seconds


def boto3_upload(client, bucket: str, source: Path, prefix: str) -> float:
    """Seconds of boto3's ``upload_file`` of every file, ``DEFAULT_PARALLEL`` at a time."""
    from boto3.s3.transfer import TransferConfig

    part = 64 * MIB
    config = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=1, use_threads=False
    )
    files = sorted(source.iterdir())
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=DEFAULT_PARALLEL) as pool:
        done = pool.map(
            lambda f: client.upload_file(str(f), bucket, f"{prefix}/{f.name}", Config=config),
            files,
        )
        list(done)
    return time.perf_counter() - start


def cp_copy(source: Path, target: Path) -> float:
    """Seconds of ``cp -r source target`` (flushed to the page cache like the server's)."""
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return time.perf_counter() - start


def s3_results(env, work: Path, source: Path, total: int, runs: int) -> list[Result]:
    from bench import s3_gc

    moto = s3_gc.start_moto()
    try:
        endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
        storage = s3_gc.s3_storage(endpoint)
        import boto3

        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=s3_gc.BUCKET)
        trial = create_experiment("bench-upload-s3", storage, trials=1).trials.first()
        _user, token = bench_user()
        ours, theirs = [], []
        with gunicorn(env, work, workers=2, threads=4) as server:
            for run in range(runs):
                ours.append(ckpt_upload(server, token, source, trial.pk, run + 1))
                theirs.append(boto3_upload(client, s3_gc.BUCKET, source, f"baseline/{run}"))
    finally:
        moto.stop()
    return [throughput("S3 (moto)", "boto3 upload_file", total, ours, theirs, S3_TARGET)]


def fs_results(env, work: Path, source: Path, total: int, runs: int) -> list[Result]:
    storage = shared_fs_storage("bench-upload-fs", str(work / "upload_fs"))
    (work / "upload_fs").mkdir(exist_ok=True)
    trial = create_experiment("bench-upload-fs", storage, trials=1).trials.first()
    _user, token = bench_user()
    ours, theirs = [], []
    with gunicorn(env, work, workers=2, threads=4) as server:
        for run in range(runs):
            ours.append(ckpt_upload(server, token, source, trial.pk, run + 1))
            theirs.append(cp_copy(source, work / "upload_fs" / f"cp-{run}"))
    return [throughput("shared_fs via the server", "cp -r", total, ours, theirs, FS_TARGET)]


def throughput(where: str, baseline: str, total: int, ours, theirs, target: float) -> Result:
    """MiB/s of ``ckpt checkpoint upload`` against ``baseline``'s, medians of the runs."""
    ours_s, theirs_s = median(ours), median(theirs)
    value = total / MIB / ours_s
    base = total / MIB / theirs_s
    return Result(
        "uploads",
        f"upload MiB/s, {total / GIB:g} GiB in {FILES} files to {where}: ckpt vs {baseline}",
        round(value, 1),
        "MiB/s",
        baseline=round(base, 1),
        ratio=round(value / base, 2),
        target=f">= {target:g}x",
        met=value >= target * base,
        detail={"ckpt_seconds": ours, "baseline_seconds": theirs},
    )


def run(env: dict[str, str], work: Path, total: int = GIB, runs: int = 3) -> list[Result]:
    source = seed_directory(work / "uploads", total)
    try:
        return s3_results(env, work, source, total, runs) + fs_results(
            env, work, source, total, runs
        )
    finally:
        shutil.rmtree(work / "uploads", ignore_errors=True)
