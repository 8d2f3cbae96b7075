"""Password guessing, replayed as the attack (issue 25, item 8).

Before: unlimited wrong passwords on /accounts/login/ and det login, and 64 anonymous det
logins stalled a signed-in user's page (each one a PBKDF2 hash). Now django-axes counts
failures per (username, IP address) pair, shared by the web sign-in, the admin's and
``det user login``: after ``CKPTWEB_LOGIN_FAILURES`` (10) the pair is refused for
``CKPTWEB_LOGIN_COOLOFF_MINUTES`` (15) before any hash is computed, while the same user from
elsewhere and other users from the same address still sign in.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import hashers
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from ckptweb.detcompat.auth import det_prehash
from ckptweb.detcompat.models import DetToken
from tests.boundary.appserver import AppServer
from tests.factories import password_for

pytestmark = pytest.mark.django_db

LIMIT = 10  # the default CKPTWEB_LOGIN_FAILURES
ATTACKER = "203.0.113.9"
ELSEWHERE = "198.51.100.7"
DET_LOGIN = "/det-compat/api/v1/auth/login"


@pytest.fixture(autouse=True)
def _cheap_pbkdf2(settings):
    """PBKDF2 hashers (as in production, the Determined one first) with few iterations."""
    settings.PASSWORD_HASHERS = [
        "tests.detcompat.hashers.FastDeterminedHasher",
        "tests.detcompat.hashers.FastPBKDF2Hasher",
    ]


@pytest.fixture
def hashes(monkeypatch) -> list[int]:
    """Grows by one for every PBKDF2 computed (every password hasher here ends in it)."""
    computed: list[int] = []
    real = hashers.pbkdf2

    def counting(*args, **kwargs):
        computed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashers, "pbkdf2", counting)
    return computed


def web_sign_in(username: str, password: str, ip: str, path: str = "/accounts/login/"):
    """A fresh browser's sign-in from ``ip``: (response, whether it is now signed in)."""
    client = Client(REMOTE_ADDR=ip)
    response = client.post(path, {"username": username, "password": password})
    return response, "_auth_user_id" in client.session


def det_sign_in(username: str, password: str, ip: str):
    """``det user login`` as the client sends it (pre-hashed, no Content-Type)."""
    body = json.dumps({"username": username, "password": det_prehash(password), "isHashed": True})
    return Client(REMOTE_ADDR=ip).generic("POST", DET_LOGIN, body.encode(), content_type="")


def guess_web(username: str, ip: str, times: int) -> list[int]:
    return [web_sign_in(username, f"guess-{n}", ip)[0].status_code for n in range(times)]


def guess_det(username: str, ip: str, times: int) -> list[int]:
    return [det_sign_in(username, f"guess-{n}", ip).status_code for n in range(times)]


def test_web_guesses_lock_the_pair_and_the_right_password_is_refused_unhashed(alice, hashes):
    assert guess_web("alice", ATTACKER, LIMIT) == [200] * (LIMIT - 1) + [429]
    hashes.clear()
    response, signed_in = web_sign_in("alice", password_for("alice"), ATTACKER)
    assert response.status_code == 429
    assert not signed_in
    assert hashes == []  # refused before the password was hashed
    page = response.content.decode()
    assert 'id="locked-out"' in page and "Try again in 15 minutes" in page
    assert "alice" in page and "<form" not in page
    # The admin's sign-in is the same pair.
    response, signed_in = web_sign_in("alice", password_for("alice"), ATTACKER, "/admin/login/")
    assert (response.status_code, signed_in, hashes) == (429, False, [])


def test_a_locked_pair_locks_nobody_else(alice, bob, hashes):
    guess_web("alice", ATTACKER, LIMIT)
    response, signed_in = web_sign_in("alice", password_for("alice"), ELSEWHERE)
    assert (response.status_code, signed_in) == (302, True)
    response, signed_in = web_sign_in("bob", password_for("bob"), ATTACKER)
    assert (response.status_code, signed_in) == (302, True)
    assert det_sign_in("bob", password_for("bob"), ATTACKER).status_code == 200


def test_a_success_clears_the_pairs_failures(alice):
    assert guess_web("alice", ATTACKER, LIMIT - 1) == [200] * (LIMIT - 1)
    assert web_sign_in("alice", password_for("alice"), ATTACKER)[1]
    assert guess_web("alice", ATTACKER, LIMIT - 1) == [200] * (LIMIT - 1)
    assert web_sign_in("alice", password_for("alice"), ATTACKER)[1]


def test_the_lock_ends_after_the_cool_off(alice):
    guess_web("alice", ATTACKER, LIMIT)
    assert not web_sign_in("alice", password_for("alice"), ATTACKER)[1]
    # 14 minutes later: still locked; 16 minutes later: free.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    assert not web_sign_in("alice", password_for("alice"), ATTACKER)[1]
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert web_sign_in("alice", password_for("alice"), ATTACKER)[1]


def test_an_administrator_unlocks_a_user(alice):
    guess_web("alice", ATTACKER, LIMIT)
    call_command("axes_reset_username", "alice")
    assert web_sign_in("alice", password_for("alice"), ATTACKER)[1]


def test_det_guesses_lock_the_pair_and_the_right_password_is_refused_unhashed(alice, hashes):
    statuses = guess_det("alice", ATTACKER, LIMIT)
    assert statuses == [403] * (LIMIT - 1) + [429]
    hashes.clear()
    refused = det_sign_in("alice", password_for("alice"), ATTACKER)
    assert refused.status_code == 429
    assert hashes == []
    body = refused.json()  # Determined's error shape, which `det` prints
    assert body["error"] == {"error": body["message"]}
    assert body["message"].startswith("too many failed sign-ins as 'alice' from this address")
    assert not DetToken.objects.filter(user=alice).exists()
    # The same user from elsewhere, and the web sign-in of another user from here, still work.
    assert det_sign_in("alice", password_for("alice"), ELSEWHERE).status_code == 200
    assert DetToken.objects.filter(user=alice).count() == 1


def test_web_and_det_guesses_add_up(alice, hashes):
    """An attacker cannot double the guesses by alternating the two sign-ins."""
    guess_web("alice", ATTACKER, LIMIT // 2)
    guess_det("alice", ATTACKER, LIMIT - LIMIT // 2)
    hashes.clear()
    assert det_sign_in("alice", password_for("alice"), ATTACKER).status_code == 429
    assert web_sign_in("alice", password_for("alice"), ATTACKER)[0].status_code == 429
    assert hashes == []


def test_unknown_users_are_locked_too_without_hashing(hashes):
    """Guessing usernames costs the same: a lock per (name, address), then no hash."""
    assert guess_det("nobody", ATTACKER, LIMIT) == [403] * (LIMIT - 1) + [429]
    hashes.clear()
    assert det_sign_in("nobody", "whatever", ATTACKER).status_code == 429
    assert hashes == []


def test_a_det_success_clears_the_pairs_failures(alice):
    guess_det("alice", ATTACKER, LIMIT - 1)
    assert det_sign_in("alice", password_for("alice"), ATTACKER).status_code == 200
    assert guess_det("alice", ATTACKER, LIMIT - 1) == [403] * (LIMIT - 1)


@pytest.mark.slow
def test_gunicorn_workers_share_the_lock_behind_a_proxy(tmp_path):
    """Real parts: two gunicorn workers (each failure may land on either) and one proxy in
    front (CKPTWEB_PROXY_COUNT=1: the client is the last X-Forwarded-For address)."""
    server = AppServer(
        tmp_path / "data", workers=2, threads=2, CKPTWEB_LOGIN_FAILURES="3", CKPTWEB_PROXY_COUNT="1"
    )
    server.prepare()  # user "load", password "load-pass-123"
    server.start()
    try:

        def login(password: str, client_ip: str) -> int:
            body = {"username": "load", "password": det_prehash(password), "isHashed": True}
            forwarded = f"10.9.9.9, {client_ip}"  # what the client wrote, then the proxy
            req = urllib.request.Request(
                server.url + DET_LOGIN,
                data=json.dumps(body).encode(),
                method="POST",
                headers={"X-Forwarded-For": forwarded},
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert [login("wrong", ATTACKER) for _ in range(3)] == [403, 403, 429]
        assert login("load-pass-123", ATTACKER) == 429
        assert login("load-pass-123", ELSEWHERE) == 200
        rows = server.query("SELECT ip_address, failures_since_start FROM axes_accessattempt")
        assert rows == [(ATTACKER, 3)]
    finally:
        server.stop()
