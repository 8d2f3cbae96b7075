"""A GC run whose server process is SIGKILLed mid-run is resumed by the next server.

The embedded default (no broker): the run executes inside the gunicorn worker that took
the request. The worker is killed between two storage batches; a second server (a new
process on the same SQLite file) has no Celery beat, only the in-process sweep timer of
``experiments/gc/sweep.py``, which must retire the dead run and finish its work.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from pathlib import Path

import pytest

from tests.boundary.appserver import AppServer
from tests.servers import wait_for

pytestmark = [pytest.mark.slow]

HOOKS = str(Path(__file__).with_name("slow_storage_gunicorn.py"))
FAST_SWEEP = {"CKPTWEB_GC_SWEEP_SECONDS": "1", "CKPTWEB_GC_STALE_SECONDS": "3"}
CONFIG = {"name": "crash", "searcher": {"metric": "loss"}, "checkpoint_storage": {}}
CHECKPOINTS = 8


def states(server: AppServer) -> dict[str, int]:
    return dict(server.query("SELECT state, COUNT(*) FROM experiments_checkpoint GROUP BY state"))


def test_a_run_killed_with_its_server_is_resumed_by_the_next(tmp_path):
    data = tmp_path / "data"
    first = AppServer(
        data,
        workers=1,
        threads=4,
        CKPTWEB_GC_BATCH_SIZE="1",
        CKPTWEB_TEST_DELETE_DELAY="0.7",
        CKPTWEB_INPROCESS_SWEEP="0",  # the dying server must not finish the work itself
    )
    first.prepare()
    first.start("-c", HOOKS)
    second = AppServer(data, workers=1, threads=2, **FAST_SWEEP)
    second.token = first.token
    try:
        status, experiment = first.request("POST", "/api/v1/experiments", {"config": CONFIG})
        assert status == 201, experiment
        status, trial = first.request(
            "POST", f"/api/v1/experiments/{experiment['id']}/trials", {"hparams": {}}
        )
        assert status == 201, trial
        root = data / "checkpoints"
        uuids = []
        for steps in range(1, CHECKPOINTS + 1):
            checkpoint_uuid = str(uuid.uuid4())
            (root / checkpoint_uuid).mkdir(parents=True)
            (root / checkpoint_uuid / "w.bin").write_bytes(b"x" * 100)
            status, body = first.request(
                "POST",
                f"/api/v1/trials/{trial['id']}/checkpoints",
                {"uuid": checkpoint_uuid, "steps_completed": steps, "resources": {"w.bin": 100}},
            )
            assert status == 201, body
            uuids.append(checkpoint_uuid)
        # The request runs GC in-process and does not return before the kill.
        policy = {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 1}

        def put_policy():
            with contextlib.suppress(OSError):  # the server dies under it
                first.request(
                    "PUT", f"/api/v1/experiments/{experiment['id']}/gc-policy", policy, timeout=120
                )

        threading.Thread(target=put_policy, daemon=True).start()
        wait_for(
            lambda: states(first).get("DELETED", 0) >= 2,
            60,
            "the run to delete a couple of checkpoints",
            log=first.log_text,
            every=0.1,
        )
        first.kill()
        ((run_id, run_state),) = first.query("SELECT id, state FROM experiments_gcrun")
        assert run_state == "RUNNING"
        assert states(first).get("DELETING", 0) >= 2, states(first)

        second.start()
        wait_for(
            lambda: (
                not second.query(
                    "SELECT 1 FROM experiments_gcrun WHERE state IN ('PENDING', 'RUNNING')"
                )
                and states(second).get("DELETING", 0) == 0
            ),
            60,
            "the sweep of the new server to finish the dead run's work",
            log=second.log_text,
            every=0.1,
        )
        runs = dict(second.query("SELECT id, state FROM experiments_gcrun"))
        assert runs[run_id] == "FAILED"  # retired: its heartbeat stopped
        sweeps = second.query("SELECT state FROM experiments_gcrun WHERE reason = 'SWEEP'")
        assert ("SUCCEEDED",) in sweeps
        assert states(second) == {"DELETED": CHECKPOINTS - 1, "COMPLETED": 1}
        assert sorted(p.name for p in root.iterdir()) == [uuids[-1]]
    finally:
        first.kill()
        second.stop()
