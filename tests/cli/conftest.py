"""Fixtures of the CLI tests: the real ``ckpt`` executable against ``live_server``."""

import os
import subprocess

import pytest

from experiments import services
from tests.cli.helpers import CKPT
from tests.factories import make_experiment, report_with_files


@pytest.fixture
def ckpt_executable():
    if not CKPT.exists():
        pytest.fail(f"{CKPT} is missing: run `.venv/bin/pip install -e . --no-deps`")
    return CKPT


@pytest.fixture
def token(transactional_db, alice):
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=alice).key


@pytest.fixture
def run_ckpt(ckpt_executable, live_server, token, tmp_path):
    """Run ``ckpt ARGS`` as alice against the live server; returns CompletedProcess."""

    def run(*args, url=None, input=None, token_value=None, timeout=60):
        env = {
            **os.environ,
            "CKPTWEB_URL": url or live_server.url,
            "CKPTWEB_TOKEN": token if token_value is None else token_value,
        }
        return subprocess.run(
            [str(ckpt_executable), *map(str, args)],
            env=env,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )

    return run


@pytest.fixture
def populated(transactional_db, alice, default_storage):
    """alice's experiment: two trials, five checkpoints with real files (two unmeasured)."""
    experiment = make_experiment(alice, default_storage, name="cli-exp")
    first = services.create_trial(experiment)
    second = services.create_trial(experiment)
    rows = [
        (first, 100, 0.9),
        (first, 200, 0.5),
        (first, 300, None),
        (second, 100, 0.7),
        (second, 200, None),
    ]
    checkpoints = [
        report_with_files(
            default_storage,
            trial,
            steps,
            {"state-dict.pth": os.urandom(1000 + steps), "code/model_def.py": b"print(1)\n"},
            metric,
        )
        for trial, steps, metric in rows
    ]
    return experiment, checkpoints
