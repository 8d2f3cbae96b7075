"""``ckpt login`` / ``ckpt logout`` through the real executable against a live server, and
``Client()`` reading the stored credentials (issue 28, item 2)."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from ckptweb.accounts.models import ApiToken
from ckptweb.audit.models import Action, AuditEvent
from ckptweb.client import Client
from ckptweb.client.credentials import save_credentials
from tests import REPO
from tests.client.cli.helpers import CKPT
from tests.factories import password_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def config_home(tmp_path):
    return tmp_path / "config"


@pytest.fixture
def ckpt(live_server, config_home, tmp_path):
    """Run ``ckpt`` with no CKPTWEB_URL/CKPTWEB_TOKEN, its config directory in tmp_path."""

    def run(*args, password=None, input=""):
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("CKPTWEB_URL", "CKPTWEB_TOKEN", "CKPTWEB_PASSWORD")
        }
        env["XDG_CONFIG_HOME"] = str(config_home)
        env["PYTHONPATH"] = str(REPO)  # this checkout's client, whichever one is installed
        if password is not None:
            env["CKPTWEB_PASSWORD"] = password
        return subprocess.run(
            [str(CKPT), *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    return run


def test_login_stores_a_token_that_ckpt_uses_and_logout_revokes_it(
    ckpt, live_server, config_home, alice
):
    result = ckpt("login", live_server.url, "--username", "alice", password=password_for("alice"))
    assert result.returncode == 0, result.stderr
    path = config_home / "ckptweb" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    token = ApiToken.objects.get()
    assert stored["url"] == live_server.url and stored["token_id"] == token.pk
    assert token.user == alice and token.name.startswith("ckpt on ")
    assert stored["token"] not in result.stdout + result.stderr
    assert password_for("alice") not in path.read_text()

    listed = ckpt("experiment", "list")  # no CKPTWEB_URL / CKPTWEB_TOKEN: the stored ones
    assert listed.returncode == 0, listed.stderr
    token.refresh_from_db()
    assert token.last_used_at is not None

    # Logging in again replaces this machine's token (the old one is revoked).
    again = ckpt("login", "--username", "alice", password=password_for("alice"))
    assert again.returncode == 0, again.stderr
    token = ApiToken.objects.get()
    assert json.loads(path.read_text())["token_id"] == token.pk

    result = ckpt("logout")
    assert result.returncode == 0, result.stderr
    assert not path.exists() and not ApiToken.objects.exists()
    revoked = AuditEvent.objects.filter(action=Action.TOKEN_REVOKE)
    assert [event.actor for event in revoked] == [alice, alice]
    assert ckpt("experiment", "list").returncode == 1  # nothing stored: 401
    assert ckpt("logout").returncode == 1


def test_login_asks_for_the_username_and_a_wrong_password_fails_cleanly(
    ckpt, live_server, config_home, alice
):
    result = ckpt("login", live_server.url, password="wrong", input="alice\n")
    assert result.returncode == 1
    assert result.stderr.startswith("ckpt: error:") and "Traceback" not in result.stderr
    assert not (config_home / "ckptweb").exists() and not ApiToken.objects.exists()


def test_login_with_a_token_checks_and_stores_it(ckpt, live_server, config_home, alice):
    from ckptweb.accounts.services import create_token

    _token, key = create_token(alice, "from the page")
    assert ckpt("login", live_server.url, "--token", "not-a-token").returncode == 1
    result = ckpt("login", live_server.url, "--token", key)
    assert result.returncode == 0, result.stderr
    stored = json.loads((config_home / "ckptweb" / "credentials").read_text())
    assert stored == {"url": live_server.url, "token": key}
    assert ckpt("experiment", "list").returncode == 0
    result = ckpt("logout")  # forgets it; a token made on the page is revoked there
    assert result.returncode == 0 and "Tokens page" in result.stdout
    assert ApiToken.objects.count() == 1


def test_client_reads_the_stored_credentials_only_for_their_server(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("CKPTWEB_URL", raising=False)
    monkeypatch.delenv("CKPTWEB_TOKEN", raising=False)
    save_credentials({"url": "http://ckpt.example:8000", "token": "stored-key"})
    client = Client()
    assert (client.url, client.token) == ("http://ckpt.example:8000", "stored-key")
    monkeypatch.setenv("CKPTWEB_URL", "http://elsewhere.example")
    assert Client().token == ""  # never sent to another server
    monkeypatch.setenv("CKPTWEB_TOKEN", "env-key")
    assert Client().token == "env-key"
