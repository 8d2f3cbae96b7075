"""The ingest ceilings: the same inserts without Django (psycopg straight to PostgreSQL).

What ``POST checkpoints`` and ``checkpoints:batch`` could reach on this machine if
Django, DRF and HTTP cost nothing: ``CLIENTS`` threads, each with its own connection,
insert checkpoint rows of the same shape into the real table (all its indexes), one row
per transaction (a single report) or ``BATCH`` rows per statement and transaction (a batch).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bench.common import Result
from bench.data import reporting_experiment
from experiments.models import Checkpoint

CLIENTS = 4
BATCH = 1000
COLUMNS = (
    "uuid, experiment_id, trial_id, steps_completed, report_time, state, resources, "
    "size_bytes, metadata, validation_metric, protected, error, deletion_failures"
)
RESOURCES = json.dumps({"state-dict.pth": 52_428_800, "metadata.json": 1_024})


def rows(experiment_id: int, trial_id: int, count: int, offset: int) -> list[tuple]:
    return [
        (uuid.uuid4(), experiment_id, trial_id, offset + i, "COMPLETED", RESOURCES, 52_429_824)
        for i in range(count)
    ]


def insert(conn, values: list[tuple]) -> None:
    """One INSERT of ``values`` in its own transaction."""
    table = Checkpoint._meta.db_table
    placeholders = ", ".join(
        ["(%s, %s, %s, %s, now(), %s, %s, %s, '{}', NULL, false, '', 0)"] * len(values)
    )
    flat = [field for row in values for field in row]
    with conn.transaction():
        conn.execute(f"INSERT INTO {table} ({COLUMNS}) VALUES {placeholders}", flat)


def rate(experiment_id: int, trial_ids: list[int], total: int, per_statement: int) -> float:
    """Rows per second of ``total`` rows from ``CLIENTS`` connections."""

    def client(k: int) -> None:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            for start in range(k * per_statement, total, CLIENTS * per_statement):
                insert(conn, rows(experiment_id, trial_ids[k], per_statement, start))

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return total / (time.perf_counter() - started)


def run(work, single: int, batched: int) -> list[Result]:
    """The two ceilings, as results beside the measured ingest rates."""
    experiment, trial_ids = reporting_experiment("ceiling", work / "ceiling_fs", CLIENTS)
    one = rate(experiment.id, trial_ids, single, 1)
    many = rate(experiment.id, trial_ids, batched, BATCH)
    return [
        Result(
            "5 ingest",
            f"ceiling: raw INSERT, 1 row per transaction, {CLIENTS} connections",
            round(one),
            "rows/s",
            target="(ceiling, no Django)",
        ),
        Result(
            "6 batch",
            f"ceiling: raw INSERT, {BATCH} rows per statement, {CLIENTS} connections",
            round(many),
            "rows/s",
            target="(ceiling, no Django)",
        ),
    ]
