"""API tokens (issue 28, items 1 and 5): named, hashed at rest, expiring, last use noted,
revoked by their owner or staff, audited without their key; DRF's old tokens migrated."""

from __future__ import annotations

import base64
import importlib
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from ckptweb.accounts import services
from ckptweb.accounts.models import ApiToken
from ckptweb.audit.models import Action, AuditEvent
from ckptweb.detcompat.auth import issue_token
from ckptweb.detcompat.models import DetToken
from tests.factories import client_for, password_for

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens"
PROBE = "/api/v1/experiments"


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def every_stored_value() -> str:
    """Every column of every token row, as text (what a database dump would show)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        return json.dumps(cursor.fetchall(), default=str)


def test_a_created_key_is_shown_once_works_and_is_not_stored(alice):
    response = client_for(alice, api=True).post(TOKENS, {"name": "laptop"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    key = body["key"]
    assert set(body) == {"id", "name", "key", "expires_at"} and body["expires_at"] is None
    token = ApiToken.objects.get(pk=body["id"])
    assert (token.name, token.user) == ("laptop", alice)
    assert key not in every_stored_value()
    assert token.token_key == key[:15] and token.digest != key

    assert with_key(key).get(PROBE).status_code == 200
    listed = client_for(alice, api=True).get(TOKENS).json()
    assert [row["name"] for row in listed] == ["laptop"]
    assert key not in json.dumps(listed) and "key" not in listed[0]


def test_bad_input_names_the_field(alice):
    api = client_for(alice, api=True)
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = api.post(TOKENS, {"name": "x", "expires_at": past}, format="json")
    assert response.status_code == 400 and "expires_at" in response.json()["message"]
    response = api.post(TOKENS, {"name": "x" * 101}, format="json")
    assert response.status_code == 400 and "name" in response.json()["message"]
    assert not ApiToken.objects.exists()


def test_an_expired_token_is_refused(alice):
    soon = timezone.now() + timedelta(days=1)
    token, key = services.create_token(alice, "ci", expires_at=soon)
    assert with_key(key).get(PROBE).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = with_key(key).get(PROBE)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_revoked_token_is_refused_and_both_are_audited_without_the_key(alice):
    api = client_for(alice, api=True)
    created = api.post(TOKENS, {"name": "laptop"}, format="json").json()
    assert with_key(created["key"]).get(PROBE).status_code == 200
    assert api.delete(f"{TOKENS}/{created['id']}").status_code == 204
    assert not ApiToken.objects.exists()
    assert with_key(created["key"]).get(PROBE).status_code == 401
    assert api.delete(f"{TOKENS}/{created['id']}").status_code == 404

    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.action, e.actor, e.target_id) for e in events] == [
        (Action.TOKEN_CREATE, alice, str(created["id"])),
        (Action.TOKEN_REVOKE, alice, str(created["id"])),
    ]
    assert events[0].after["name"] == "laptop" and events[1].before["id"] == created["id"]
    dumped = json.dumps([[e.before, e.after, e.target_id] for e in events])
    assert created["key"] not in dumped and created["key"][:15] not in dumped


@pytest.mark.parametrize("header", ["Token \xe9\xe9", "Token", "Token a b", "Token " + "0" * 64])
def test_a_malformed_or_unknown_key_is_a_401(alice, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(PROBE)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_last_use_is_noted_at_most_once_a_minute(alice):
    token, key = services.create_token(alice, "laptop")
    assert token.last_used_at is None
    with_key(key).get(PROBE)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    with_key(key).get(PROBE)
    token.refresh_from_db()
    assert token.last_used_at == first  # no write within the minute
    earlier = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=earlier)
    with_key(key).get(PROBE)
    token.refresh_from_db()
    assert token.last_used_at > earlier + timedelta(minutes=1)
    assert client_for(alice, api=True).get(TOKENS).json()[0]["last_used_at"] is not None


def test_staff_see_and_revoke_everyones_others_only_their_own(alice, bob, staff):
    alices, _ = services.create_token(alice, "alice's")
    services.create_token(bob, "bob's")
    as_alice, as_bob, as_staff = (client_for(u, api=True) for u in (alice, bob, staff))

    assert [t["name"] for t in as_alice.get(TOKENS).json()] == ["alice's"]
    assert as_bob.get(TOKENS, {"user": "alice"}).status_code == 403
    assert [t["name"] for t in as_staff.get(TOKENS, {"user": "alice"}).json()] == ["alice's"]
    assert as_staff.get(TOKENS, {"user": "nobody"}).status_code == 400

    assert as_bob.delete(f"{TOKENS}/{alices.pk}").status_code == 403
    assert ApiToken.objects.filter(pk=alices.pk).exists()
    assert as_staff.delete(f"{TOKENS}/{alices.pk}").status_code == 204
    assert not ApiToken.objects.filter(pk=alices.pk).exists()
    revoked = AuditEvent.objects.get(action=Action.TOKEN_REVOKE)
    assert (revoked.actor, revoked.owner_id) == (staff, alice.pk)


def test_an_old_drf_token_is_migrated_hashed_and_keeps_working(alice):
    from rest_framework.authtoken.models import Token

    old = Token.objects.create(user=alice)
    migration = importlib.import_module("ckptweb.accounts.migrations.0002_move_drf_tokens")
    migration.move_drf_tokens(apps, None)

    assert not Token.objects.exists()
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.expiry) == (alice, migration.MIGRATED_NAME, None)
    assert token.created == old.created
    assert old.key not in every_stored_value()
    assert with_key(old.key).get(PROBE).status_code == 200


def test_the_admin_command_prints_a_working_key(alice, capsys):
    call_command("create_token", "alice", "--name", "handed out", "--days", "7")
    key = capsys.readouterr().out.strip()
    token = ApiToken.objects.get()
    assert token.name == "handed out" and token.expiry > timezone.now() + timedelta(days=6)
    assert with_key(key).get(PROBE).status_code == 200


# --- HTTP Basic for ``ckpt login``'s one call, behind django-axes -------------------------


def basic(username: str, password: str) -> APIClient:
    client = APIClient()
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {pair}")
    return client


def test_basic_auth_creates_a_token_only_on_the_tokens_route(alice):
    client = basic("alice", password_for("alice"))
    assert client.post(TOKENS, {"name": "ckpt on box"}, format="json").status_code == 201
    assert client.get(PROBE).status_code == 401  # the rest of the API takes tokens only
    response = basic("alice", "wrong").post(TOKENS, {"name": "x"}, format="json")
    assert response.status_code == 401
    assert ApiToken.objects.count() == 1


def test_a_locked_out_pair_gets_a_clear_429(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        response = basic("alice", "wrong").post(TOKENS, {"name": "x"}, format="json")
        assert response.status_code == 401
    locking = basic("alice", "wrong").post(TOKENS, {"name": "x"}, format="json")
    assert locking.status_code == 429, locking.content
    # Now even the right password is refused, with JSON that says why.
    response = basic("alice", password_for("alice")).post(TOKENS, {"name": "x"}, format="json")
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    assert "too many failed sign-ins" in response.json()["message"]
    assert not ApiToken.objects.exists()


# --- the Tokens page ----------------------------------------------------------------------


def test_the_page_creates_shows_the_key_once_and_revokes(alice):
    page = client_for(alice)
    assert 'href="/tokens/"' in page.get("/experiments/").content.decode()
    response = page.post("/tokens/", {"name": "notebook", "expires_at": ""})
    assert response.status_code == 200
    token = ApiToken.objects.get()
    html = response.content.decode()
    keys = [line for line in html.splitlines() if 'id="new-token-key"' in line]
    key = keys[0].split(">", 1)[1].split("<", 1)[0]
    assert token.token_key == key[:15] and "will not be shown again" in html
    assert with_key(key).get(PROBE).status_code == 200

    html = page.get("/tokens/").content.decode()
    assert "notebook" in html and key not in html
    assert page.post(f"/tokens/{token.pk}/revoke").status_code == 302
    assert not ApiToken.objects.exists()

    response = page.post("/tokens/", {"name": "", "expires_at": "2000-01-01T00:00"})
    assert response.status_code == 400 and not ApiToken.objects.exists()


def test_the_page_lists_and_revokes_det_login_tokens(alice, bob):
    issue_token(alice)
    row = DetToken.objects.get()
    page = client_for(alice)
    assert f'data-det-token="{row.pk}"' in page.get("/tokens/").content.decode()
    assert client_for(bob).post(f"/tokens/det/{row.pk}/revoke").status_code == 403
    assert page.post(f"/tokens/det/{row.pk}/revoke").status_code == 302
    assert not DetToken.objects.exists()
    assert AuditEvent.objects.filter(action=Action.TOKEN_REVOKE, actor=alice).count() == 1


def test_staff_see_everyones_tokens_on_the_page_others_their_own(alice, bob, staff):
    alices, _ = services.create_token(alice, "alice-laptop")
    services.create_token(bob, "bob-laptop")
    issue_token(bob)
    html = client_for(alice).get("/tokens/").content.decode()
    assert "alice-laptop" in html and "bob-laptop" not in html and "data-det-token" not in html
    html = client_for(staff).get("/tokens/").content.decode()
    assert "alice-laptop" in html and "bob-laptop" in html and "data-det-token" in html
    assert client_for(bob).post(f"/tokens/{alices.pk}/revoke").status_code == 403
    assert client_for(staff).post(f"/tokens/{alices.pk}/revoke").status_code == 302
    assert not ApiToken.objects.filter(pk=alices.pk).exists()


def test_the_admin_lists_tokens_without_keys_and_no_plaintext_token_admin(admin_client, alice):
    from django.contrib import admin
    from rest_framework.authtoken.models import TokenProxy

    _token, key = services.create_token(alice, "admin-visible")
    assert TokenProxy not in admin.site._registry
    html = admin_client.get("/admin/accounts/apitoken/").content.decode()
    assert "admin-visible" in html and key not in html and key[:15] not in html
