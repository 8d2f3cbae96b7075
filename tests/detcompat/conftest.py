"""Fixtures driving Determined's real client (``determined==0.38.1``, unmodified).

The client lives in a venv of its own (``make det-venv`` -> ``var/det-venv``), created on
first use and reused after; without it the tests skip (fail under
CKPTWEB_REQUIRE_SERVICES=1). ``det(...)`` runs the ``det`` executable against
``live_server``/det-compat and ``det_python(code)`` runs SDK code in that venv's python,
both in a fresh process with a temporary HOME (no token or cert cache is shared between
tests), no controlling terminal (``getpass`` reads stdin) and an environment reduced to
what is needed: no cloud credentials, no metadata servers, no analytics key.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests import REPO as ROOT
from tests.detcompat.helpers import run_detached
from tests.servers import missing_service

DET_VENV = ROOT / "var" / "det-venv"  # made by `make det-venv`
DET = DET_VENV / "bin" / "det"
DET_PYTHON = DET_VENV / "bin" / "python"


@pytest.fixture(scope="session")
def det_venv() -> Path:
    """The venv with determined 0.38.1 (``make det-venv``, a no-op once it exists)."""
    if not DET.exists():
        try:
            result = subprocess.run(
                ["make", "-s", "det-venv"], cwd=ROOT, capture_output=True, text=True, timeout=900
            )
            problem = result.stderr.strip()[-300:] if result.returncode else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = str(exc)
        if problem or not DET.exists():
            missing_service(
                f"Determined client venv {DET_VENV} could not be created "
                f"(make det-venv: {problem or 'no det executable'})"
            )
    return DET_VENV


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The Determined hasher (cheap iterations) first, as in production settings."""
    settings.PASSWORD_HASHERS = [
        "tests.detcompat.hashers.FastDeterminedHasher",
        "tests.detcompat.hashers.FastPBKDF2Hasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]


@pytest.fixture
def master(live_server) -> str:
    return f"{live_server.url}/det-compat"


@pytest.fixture
def det_env(tmp_path, master):
    """``det_env(token=..., user=...)``: the environment of one client process."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def make(user: str | None = None, token: str | None = None) -> dict:
        env = {
            "PATH": f"{DET_VENV / 'bin'}:/usr/bin:/bin",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "DET_MASTER": master,
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "NO_PROXY": "*",
            # Never reach a cloud: no credentials, no instance metadata.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",
        }
        if user is not None:
            env["DET_USER"] = user
        if token is not None:
            env["DET_USER_TOKEN"] = token
        return env

    return make


@pytest.fixture
def alice_token(transactional_db, alice):
    from ckptweb.detcompat.auth import issue_token

    return issue_token(alice)


@pytest.fixture
def det(det_venv, det_env, master, alice, alice_token, tmp_path):
    """Run ``det -m MASTER ARGS`` (as alice unless ``user``/``token`` say otherwise)."""

    def run(*args, input="", user="alice", token=None, timeout=120):
        env = det_env(user=user, token=alice_token if token is None else token)
        argv = [str(DET), "-m", master, *map(str, args)]
        return run_detached(argv, env, tmp_path, timeout, input=input)

    return run


@pytest.fixture
def det_python(det_venv, det_env, tmp_path):
    """Run SDK code in the Determined venv's python; returns CompletedProcess."""

    def run(code: str, timeout=120, **env_extra):
        env = {**det_env(), **env_extra}
        return run_detached([str(DET_PYTHON), "-c", textwrap.dedent(code)], env, tmp_path, timeout)

    return run
