"""``make bench``: ckptweb's benchmarks at scale (issues 7 and 17; targets in docs/PERFORMANCE.md).

Creates the PostgreSQL database ``ckptweb_bench`` (dropped at the end), migrates it with
``manage.py migrate``, generates data in PostgreSQL (INSERT … SELECT generate_series), then
runs the sections. The sections marked *curve* run at every size of ``--sizes`` (1k, 10k,
100k checkpoints; 1M added by ``--full``) so the growth is visible:

1. ``gc`` (curve) — GET gc-preview vs a bare SELECT of the same candidates;
2. ``pages`` (curve) — experiment page and checkpoints API page, with query counts;
3. ``downloads`` — 1 GiB through gunicorn vs cat, tar of 10 files vs tar | cat, peak RSS;
4. ``s3`` — GC deletes on S3 (moto): batched vs one DeleteObject per file;
5. ``ingest`` (curve, up to 10k) — single reports per second, 4 clients, gunicorn;
6. ``batch`` (curve) — checkpoints per second through ``checkpoints:batch``, 4 clients;
7. ``gcrun`` (curve, up to 100k) — a real Celery worker deletes shared_fs and S3 (moto)
   checkpoints: checkpoints per second and storage requests per checkpoint;
8. ``direct`` — ``ckpt download --direct`` vs the tar stream, 1 GiB in 8 files on moto,
   and the server's CPU seconds for each;
9. ``uploads`` — ``ckpt checkpoint upload`` of 1 GiB in 8 files vs boto3's ``upload_file``
   (S3 on moto) and vs ``cp -r`` (shared_fs through the server).

Prints a table, writes ``bench/results.json`` and plots time against size per measure in
``bench/results.png``. Generated files live in a temp dir that is removed at the end;
gunicorn, Celery and moto are stopped even when a section fails.

    python -m bench.run                 # 1k, 10k, 100k
    python -m bench.run --full          # and 1M
    python -m bench.run --quick         # 1k and 10k, small downloads, for development
    python -m bench.run --only gc,pages --sizes 1k,100k
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import common

BENCH_DIR = Path(__file__).resolve().parent

SECTIONS = ("gc", "pages", "downloads", "s3", "ingest", "batch", "gcrun", "direct", "uploads")
SIZES = (1_000, 10_000, 100_000)
FULL_SIZE = 1_000_000
#: The largest size some sections run at (they would take many minutes beyond).
CAPS = {"ingest": 10_000, "gcrun": 100_000}

FULL = {
    "per_trial": 100,
    "runs": 5,
    "download_bytes": common.GIB,
    "s3_checkpoints": 10_000,
    "s3_batched_sample": 500,
    "s3_per_file_sample": 150,
    "s3_runs": 3,
    "direct_bytes": common.GIB,
    "direct_runs": 3,
    "upload_bytes": common.GIB,
    "upload_runs": 3,
}
QUICK = FULL | {
    "runs": 3,
    "download_bytes": 64 * common.MIB,
    "s3_checkpoints": 1000,
    "s3_batched_sample": 100,
    "s3_per_file_sample": 30,
    "direct_bytes": 64 * common.MIB,
    "upload_bytes": 64 * common.MIB,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument("--keep-db", action="store_true", help="do not drop ckptweb_bench")
    parser.add_argument("--full", action="store_true", help="add 1M checkpoints to the sizes")
    parser.add_argument("--sizes", help="comma-separated sizes, e.g. 1k,10k,100k,1M")
    parser.add_argument(
        "--gc-max", default="100k", help="largest size of the gcrun section (default 100k)"
    )
    args = parser.parse_args(argv)
    args.curve = curve_sizes(args, parser)
    args.caps = {**CAPS, "gcrun": common.parse_size(args.gc_max)}
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def curve_sizes(args: argparse.Namespace, parser) -> list[int]:
    """The checkpoint counts of the curve sections, smallest first."""
    if args.sizes:
        try:
            return sorted(common.parse_size(text) for text in args.sizes.split(","))
        except ValueError as exc:
            parser.error(str(exc))
    sizes = list(SIZES[:2] if args.quick else SIZES)
    return sizes + [FULL_SIZE] if args.full else sizes


def say(message: str) -> None:
    """Progress on stderr, so stdout is just the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def setup_django(env: dict[str, str]) -> None:
    """Point this process at the bench database, migrate it, set Django up."""
    os.environ.update(env)
    common.create_database()
    common.manage("migrate", "--noinput", "-v0", env=env)
    import django

    django.setup()


class Bench:
    """One run of the selected sections, collecting results and profiles."""

    def __init__(self, args: argparse.Namespace, work: Path, env: dict[str, str]):
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.work = work
        self.env = env
        self.results: list[common.Result] = []
        self.profiles: dict = {}
        self.failures: dict[str, str] = {}
        self._experiments: dict[str, int] = {}

    def section(self, name: str, fn) -> None:
        """Run one section; a failure is recorded and the others still run."""
        if name not in self.args.sections:
            return
        say(f"section {name} …")
        start = time.perf_counter()
        try:
            fn()
        except Exception:
            self.failures[name] = traceback.format_exc()
            say(f"section {name} FAILED:\n{self.failures[name]}")
        say(f"section {name} took {time.perf_counter() - start:.0f} s")

    def experiments(self) -> dict[str, int]:
        """One generated experiment per curve size (created on first use): label -> id."""
        if not self._experiments:
            from bench import data

            storage = data.shared_fs_storage("bench-pages", str(self.work / "pages_fs"))
            for size in self.args.curve:
                label = common.size_label(size)
                say(f"generating {size:,} checkpoints …")
                trials = max(1, size // self.sizes["per_trial"])
                made = data.populate(label, storage, trials, size // trials, seed=size % 97 / 97)
                self._experiments[label] = made.id
        return self._experiments

    def capped(self, section: str) -> list[int]:
        """The curve sizes ``section`` runs at."""
        return [size for size in self.args.curve if size <= self.args.caps.get(section, size)]

    def gc(self) -> None:
        from bench import data, gc_preview

        _user, token = data.bench_user()
        experiments = self.experiments()
        for label, experiment_id in experiments.items():
            explain = label == list(experiments)[-1]
            results, profile = gc_preview.run(experiment_id, token, self.sizes["runs"], explain)
            self.results += results
            self.profiles.update(profile)

    def pages(self) -> None:
        from bench import data, pages

        user, token = data.bench_user()
        self.results += pages.run(user, token, self.experiments(), self.sizes["runs"])

    def downloads(self) -> None:
        from bench import downloads

        runs = self.sizes["runs"]
        self.results += downloads.run(self.env, self.work, self.sizes["download_bytes"], runs)

    def s3(self) -> None:
        from bench import s3_gc

        s = self.sizes
        self.results += s3_gc.run(
            s["s3_checkpoints"], s["s3_batched_sample"], s["s3_per_file_sample"], s["s3_runs"]
        )

    def ingest(self) -> None:
        from bench import ingest

        for size in self.capped("ingest"):
            self.results += ingest.run(self.env, self.work, size)
        self.profiles.update(ingest.profile())

    def batch(self) -> None:
        from bench import batch_ingest, ceiling

        measured = []
        for size in self.capped("batch"):
            measured += batch_ingest.run(self.env, self.work, size)
        ceilings = ceiling.run(self.work, 2_000, 20_000)
        self.results += measured + ceilings
        if measured:  # the largest size against the raw INSERT of this run (load hits both)
            self.results.append(batch_ingest.against_ceiling(measured[-1], ceilings[-1]))

    def gcrun(self) -> None:
        from bench import gc_worker

        self.results += gc_worker.run(self.env, self.work, self.capped("gcrun"))

    def direct(self) -> None:
        from bench import direct

        s = self.sizes
        self.results += direct.run(self.env, self.work, s["direct_bytes"], s["direct_runs"])

    def uploads(self) -> None:
        from bench import uploads

        s = self.sizes
        self.results += uploads.run(self.env, self.work, s["upload_bytes"], s["upload_runs"])

    def run_all(self) -> None:
        for name in SECTIONS:
            self.section(name, getattr(self, name))


def write_results(bench: Bench, args, seconds: float) -> None:
    """bench/results.json: machine, sizes, every result with its runs, profiles, failures."""
    payload = {
        "machine": common.machine(),
        "quick": args.quick,
        "sizes": bench.sizes,
        "curve_sizes": args.curve,
        "seconds": round(seconds),
        "results": [result.as_dict() for result in bench.results],
        "profiles": bench.profiles,
        "failures": bench.failures,
    }
    args.output.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="ckptweb-bench-"))
    env = common.bench_environment(work)
    bench = Bench(args, work, env)
    try:
        say(f"bench database {common.BENCH_DATABASE_URL}, data in {work}")
        setup_django(env)
        bench.run_all()
    finally:
        cleanup(args, work)
    seconds = time.perf_counter() - started
    print(common.format_table(bench.results))
    try:
        from bench import plot

        picture = args.output.with_suffix(".png")
        if plot.plot(bench.results, picture):
            say(f"plotted {picture}")
    except Exception:
        bench.failures["plot"] = traceback.format_exc()
        say(f"plot FAILED:\n{bench.failures['plot']}")
    write_results(bench, args, seconds)
    say(f"done in {seconds:.0f} s; wrote {args.output}")
    return 1 if bench.failures else 0


def cleanup(args, work: Path) -> None:
    """Stop subprocesses, close connections, drop the database, remove the temp dir."""
    common.stop_all_processes()
    try:
        from django.db import connections

        connections.close_all()
    except Exception as exc:  # Django may not be set up if setup failed
        say(f"closing connections: {exc}")
    if not args.keep_db:
        common.drop_database()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
