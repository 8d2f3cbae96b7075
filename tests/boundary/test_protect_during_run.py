"""Protecting checkpoints while a real GC run of 3,000 deletes them (issue 25, break 3).

The attack: a policy that keeps nothing is applied to 3,000 checkpoints on real gunicorn
(the run executes in-process, batches of 100, each delete slowed a little so the run
lasts seconds), while two clients protect random checkpoints as fast as they can. Before
issue 24's single writer, protecting a checkpoint the run had claimed answered 200, said
"garbage collection will keep it", and the run deleted it.

What must hold: every protect answers 200 or a JSON 409; every checkpoint whose protect
answered 200 is COMPLETED, protected and has its file; every other one is DELETED and
its file is gone; and 409s were answered while the run was still deleting (the window
the attack needs was open).
"""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path

import pytest

from tests.boundary.appserver import AppServer
from tests.servers import wait_for

pytestmark = [pytest.mark.slow]

HOOKS = str(Path(__file__).with_name("slow_storage_gunicorn.py"))
CONFIG = {"name": "protect-race", "searcher": {"metric": "loss"}, "checkpoint_storage": {}}
CHECKPOINTS = 3000
PROTECTED_BEFORE = 20
ATTACKERS = 2


def test_protecting_during_a_run_of_3000_never_loses_a_protected_checkpoint(tmp_path):
    data = tmp_path / "data"
    server = AppServer(
        data, workers=2, threads=4, CKPTWEB_GC_BATCH_SIZE="100", CKPTWEB_TEST_DELETE_DELAY="0.05"
    )
    server.prepare()
    server.start("-c", HOOKS)
    try:
        status, experiment = server.request("POST", "/api/v1/experiments", {"config": CONFIG})
        assert status == 201, experiment
        status, trial = server.request(
            "POST", f"/api/v1/experiments/{experiment['id']}/trials", {"hparams": {}}
        )
        assert status == 201, trial
        root = data / "checkpoints"
        uuids = [str(uuid.uuid4()) for _ in range(CHECKPOINTS)]
        for name in uuids:
            (root / name).mkdir(parents=True)
            (root / name / "w.bin").write_bytes(b"x")
        for start in range(0, CHECKPOINTS, 1000):
            reports = [
                {"uuid": name, "steps_completed": start + i + 1, "resources": {"w.bin": 1}}
                for i, name in enumerate(uuids[start : start + 1000])
            ]
            status, body = server.request(
                "POST", f"/api/v1/trials/{trial['id']}/checkpoints:batch", {"items": reports}
            )
            assert status == 201, body

        answers: dict[str, list[int]] = {}  # uuid -> statuses of its protects
        lock = threading.Lock()

        def protect(name: str) -> int:
            status, body = server.request(
                "PATCH", f"/api/v1/checkpoints/{name}", {"protected": True}
            )
            assert status in (200, 409), (status, body)
            if status == 409:
                assert isinstance(body, dict) and body.get("message"), body
            with lock:
                answers.setdefault(name, []).append(status)
            return status

        rng = random.Random(25)
        for name in rng.sample(uuids, PROTECTED_BEFORE):
            assert protect(name) == 200

        applied = threading.Event()
        refused_mid_run = []

        def attack(seed: int):
            pick = random.Random(seed)
            while not applied.is_set():
                name = pick.choice(uuids)
                status = protect(name)
                if status == 409 and len(refused_mid_run) < 5 and not applied.is_set():
                    left = server.query(
                        "SELECT COUNT(*) FROM experiments_checkpoint WHERE state = 'DELETING'"
                    )[0][0]
                    if left:
                        refused_mid_run.append(name)

        attackers = [threading.Thread(target=attack, args=(i,)) for i in range(ATTACKERS)]
        for thread in attackers:
            thread.start()
        policy = {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 0}
        try:
            status, run = server.request(
                "PUT", f"/api/v1/experiments/{experiment['id']}/gc-policy", policy
            )
            assert status == 202, run
            run_url = f"/api/v1/gc-runs/{run['gc_run']['id']}"
            wait_for(
                lambda: server.request("GET", run_url)[1]["finished_at"] is not None,
                240,
                "the GC run to finish",
                log=server.log_text,
                every=0.5,
            )
        finally:
            applied.set()
            for thread in attackers:
                thread.join(60)
        finished = server.request("GET", run_url)[1]
        assert finished["state"] == "SUCCEEDED", finished

        accepted = {name for name, statuses in answers.items() if 200 in statuses}
        rows = dict(
            (name.replace("-", ""), (state, protected))
            for name, state, protected in server.query(
                "SELECT uuid, state, protected FROM experiments_checkpoint"
            )
        )
        assert len(rows) == CHECKPOINTS
        lost = []
        for name in uuids:
            state, protected = rows[name.replace("-", "")]
            on_disk = (root / name / "w.bin").exists()
            if name in accepted:
                if (state, bool(protected), on_disk) != ("COMPLETED", True, True):
                    lost.append((name, state, protected, on_disk))
            else:
                assert (state, on_disk) == ("DELETED", False), (name, state, on_disk)
                assert not protected, name
        assert not lost, f"protect answered 200, then the run deleted: {lost[:5]}"
        assert finished["deleted"] == CHECKPOINTS - len(accepted)
        assert len(accepted) >= PROTECTED_BEFORE
        assert refused_mid_run, "no protect reached the run while it was deleting"
    finally:
        server.stop()
