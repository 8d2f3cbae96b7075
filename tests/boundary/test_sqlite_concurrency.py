"""The default SQLite under concurrent writers: no "database is locked", no stuck GC run.

Replays the attack of issue 11 against real gunicorn (2 workers × 4 threads, tasks
in-process) on a file SQLite database: 8 client threads report checkpoints and
validations, change GC policies (each runs GC in the request) and read lists, all at once.
Before IMMEDIATE transactions, this gave 500s and GC runs left RUNNING forever.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from tests.boundary.appserver import AppServer
from tests.servers import wait_for

pytestmark = [pytest.mark.slow]

CLIENTS = 8
SECONDS = 12
CONFIG = {"name": "load", "searcher": {"metric": "loss"}, "checkpoint_storage": {}}


def test_concurrent_writers_and_gc_get_no_500(tmp_path):
    server = AppServer(tmp_path / "data", workers=2, threads=4)
    server.prepare()
    server.start()
    try:
        trials = []
        for _ in range(2):
            status, body = server.request("POST", "/api/v1/experiments", {"config": CONFIG})
            assert status == 201, body
            for _ in range(2):
                status, trial = server.request(
                    "POST", f"/api/v1/experiments/{body['id']}/trials", {"hparams": {}}
                )
                assert status == 201, trial
                trials.append((body["id"], trial["id"]))
        statuses: Counter = Counter()
        failures: list[str] = []
        stop = time.monotonic() + SECONDS

        def client(number: int) -> None:
            step = 0
            while time.monotonic() < stop:
                step += 1
                experiment_id, trial_id = trials[(number + step) % len(trials)]
                kind = step % 5
                if kind in (0, 1):
                    call = (
                        "POST",
                        f"/api/v1/trials/{trial_id}/checkpoints",
                        {
                            "uuid": str(uuid.uuid4()),
                            "steps_completed": number * 100_000 + step,
                            "resources": {"w.bin": 10},
                        },
                    )
                elif kind == 2:
                    call = (
                        "POST",
                        f"/api/v1/trials/{trial_id}/validations",
                        {"steps_completed": number * 100_000 + step, "metrics": {"loss": step}},
                    )
                elif kind == 3:
                    policy = {"save_experiment_best": 0, "save_trial_best": 0}
                    call = (
                        "PUT",
                        f"/api/v1/experiments/{experiment_id}/gc-policy",
                        {**policy, "save_trial_latest": 1 + step % 3},
                    )
                else:
                    call = ("GET", f"/api/v1/experiments/{experiment_id}/checkpoints", None)
                status, body = server.request(*call)
                statuses[status] += 1
                if status >= 500:
                    failures.append(f"{call[0]} {call[1]} -> {status}: {str(body)[:300]}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, f"{len(failures)} server errors, e.g. {failures[:3]}"
        assert sum(statuses.values()) > 100, statuses  # the load really happened
        assert "database is locked" not in server.log_text()
        active = "SELECT COUNT(*) FROM experiments_gcrun WHERE state IN ('PENDING', 'RUNNING')"
        running = "SELECT id, state, heartbeat FROM experiments_gcrun WHERE state = 'RUNNING'"
        wait_for(
            lambda: not server.query(active)[0][0],
            30,
            "every GC run to finish",
            log=lambda: str(server.query(running)),
            every=0.2,
        )
        runs = server.query("SELECT state, COUNT(*) FROM experiments_gcrun GROUP BY state")
        assert dict(runs).get("SUCCEEDED", 0) > 10, runs
    finally:
        server.stop()
