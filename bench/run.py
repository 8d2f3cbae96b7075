"""``make bench``: ckptweb's benchmarks at scale (issue 7; targets in docs/PERFORMANCE.md).

Creates the PostgreSQL database ``ckptweb_bench`` (dropped at the end), migrates it with
``manage.py migrate``, generates data with COPY, then runs the sections:

1. ``gc`` — GET gc-preview of 1,000 trials x 100 checkpoints vs a bare SELECT;
2. ``pages`` — experiment page and checkpoints API page at 1k and 100k checkpoints;
3. ``downloads`` — 1 GiB through gunicorn vs cat, tar of 10 files vs tar | cat, peak RSS;
4. ``s3`` — GC deletes on S3 (moto): batched vs one DeleteObject per file;
5. ``ingest`` — checkpoints reported per second through the API;
6. ``direct`` — ``ckpt download --direct`` vs the tar stream, 1 GiB in 8 files on moto,
   and the server's CPU seconds for each.

Prints a table and writes ``bench/results.json``. Generated files live in a temp dir that
is removed at the end; gunicorn and moto are stopped even when a section fails.

    python bench/run.py                 # the full run (~10 minutes here)
    python bench/run.py --quick         # small sizes, for development
    python bench/run.py --only gc,pages
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

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import common  # noqa: E402

SECTIONS = ("gc", "pages", "downloads", "s3", "ingest", "direct")

FULL = {
    "trials": 1000,
    "per_trial": 100,
    "small_trials": 10,
    "runs": 5,
    "download_bytes": common.GIB,
    "s3_checkpoints": 10_000,
    "s3_batched_sample": 500,
    "s3_per_file_sample": 150,
    "s3_runs": 3,
    "ingest": 10_000,
    "direct_bytes": common.GIB,
    "direct_runs": 3,
}
QUICK = FULL | {
    "trials": 50,
    "runs": 3,
    "download_bytes": 64 * common.MIB,
    "s3_checkpoints": 1000,
    "s3_batched_sample": 100,
    "s3_per_file_sample": 30,
    "ingest": 300,
    "direct_bytes": 64 * common.MIB,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument("--keep-db", action="store_true", help="do not drop ckptweb_bench")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


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
        self._big = None

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
        """The two generated experiments (created on first use): size label -> id."""
        if self._big is None:
            import data

            storage = data.shared_fs_storage("bench-pages", str(self.work / "pages_fs"))
            s = self.sizes
            small = data.populate("1k", storage, s["small_trials"], s["per_trial"], seed=0.1)
            say(f"generating {s['trials'] * s['per_trial']:,} checkpoints …")
            big = data.populate("big", storage, s["trials"], s["per_trial"], seed=0.2)
            self._small, self._big = small, big
        return {
            self.label(self._small.checkpoints): self._small.id,
            self.label(self._big.checkpoints): self._big.id,
        }

    @staticmethod
    def label(n: int) -> str:
        return f"{n // 1000}k" if n % 1000 == 0 else str(n)

    def gc(self) -> None:
        import data
        import gc_preview

        big_id = list(self.experiments().values())[-1]
        _user, token = data.bench_user()
        results, profile = gc_preview.run(big_id, token, self.sizes["runs"])
        self.results += results
        self.profiles.update(profile)

    def pages(self) -> None:
        import data
        import pages

        user, token = data.bench_user()
        self.results += pages.run(user, token, self.experiments(), self.sizes["runs"])

    def downloads(self) -> None:
        import downloads

        runs = self.sizes["runs"]
        self.results += downloads.run(self.env, self.work, self.sizes["download_bytes"], runs)

    def s3(self) -> None:
        import s3_gc

        s = self.sizes
        self.results += s3_gc.run(
            s["s3_checkpoints"], s["s3_batched_sample"], s["s3_per_file_sample"], s["s3_runs"]
        )

    def ingest(self) -> None:
        import ingest

        self.results += ingest.run(self.env, self.work, self.sizes["ingest"])

    def direct(self) -> None:
        import direct

        s = self.sizes
        self.results += direct.run(self.env, self.work, s["direct_bytes"], s["direct_runs"])

    def run_all(self) -> None:
        for name in SECTIONS:
            self.section(name, getattr(self, name))


def write_results(bench: Bench, args, seconds: float) -> None:
    """bench/results.json: machine, sizes, every result with its runs, profiles, failures."""
    payload = {
        "machine": common.machine(),
        "quick": args.quick,
        "sizes": bench.sizes,
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
