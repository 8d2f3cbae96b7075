"""The /det-compat/ wire contract, in-process: bodies, errors, tokens and the hasher."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils import timezone

from ckptweb.detcompat.auth import issue_token
from ckptweb.detcompat.hashers import det_prehash
from ckptweb.detcompat.models import DetToken
from experiments.models import Checkpoint, GCRun
from tests.factories import password_for
from tests.spec import spec_example

pytestmark = pytest.mark.django_db

PASSWORD = password_for("alice")


def post_raw(client, url, body: bytes, content_type: str | None = None, **headers):
    """POST ``body`` with exactly this Content-Type (none at all when None)."""
    kwargs = {"CONTENT_TYPE": content_type} if content_type is not None else {}
    return client.generic("POST", url, body, content_type=content_type or "", **kwargs, **headers)


def det_error(response) -> str:
    body = response.json()
    assert set(body) == {"message", "error"}, body
    assert body["error"] == {"error": body["message"]}
    return body["message"]


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user)}"}


def test_info_needs_no_login(client):
    response = client.get("/det-compat/info")
    assert response.status_code == 200
    assert response.json()["version"] == "0.38.1"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
def test_login_parses_json_whatever_the_content_type(client, alice, content_type):
    body = json.dumps(
        {"username": "alice", "password": det_prehash(PASSWORD), "isHashed": True}
    ).encode()
    response = post_raw(client, "/det-compat/api/v1/auth/login", body, content_type)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["user"] == {
        "id": alice.pk,
        "username": "alice",
        "displayName": "alice",
        "admin": False,
        "active": True,
        "remote": False,
    }
    me = client.get("/det-compat/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {data['token']}")
    assert me.status_code == 200 and me.json()["user"]["username"] == "alice"


def test_login_with_a_raw_password_and_failures(client, alice):
    url = "/det-compat/api/v1/auth/login"
    raw = post_raw(client, url, json.dumps({"username": "alice", "password": PASSWORD}).encode())
    assert raw.status_code == 200
    for body in (
        {"username": "alice", "password": det_prehash("wrong"), "isHashed": True},
        {"username": "nobody", "password": det_prehash(PASSWORD), "isHashed": True},
        {"username": "alice", "password": PASSWORD, "isHashed": True},  # not pre-hashed
    ):
        response = post_raw(client, url, json.dumps(body).encode())
        assert response.status_code == 403
        assert det_error(response) == "invalid credentials"
    bad = post_raw(client, url, b"{not json")
    assert bad.status_code == 400 and "body" in det_error(bad)
    missing = post_raw(client, url, b'{"password": "x"}')
    assert missing.status_code == 400 and det_error(missing).startswith("username")


@pytest.mark.parametrize("old_hasher", ["pbkdf2_sha256", "md5"])
def test_existing_hashes_upgrade_at_the_next_web_login(client, django_user_model, old_hasher):
    """A hash from before the Determined hasher: det logins fail until a web login."""
    carol = django_user_model.objects.create(username="carol")
    carol.password = make_password("carol-pass-123", hasher=old_hasher)
    assert carol.password.startswith(f"{old_hasher}$")
    carol.save()
    body = json.dumps(
        {"username": "carol", "password": det_prehash("carol-pass-123"), "isHashed": True}
    ).encode()
    assert post_raw(client, "/det-compat/api/v1/auth/login", body).status_code == 403
    web = Client().post("/accounts/login/", {"username": "carol", "password": "carol-pass-123"})
    assert web.status_code == 302  # the web login
    carol.refresh_from_db()
    assert carol.password.startswith("det_pbkdf2_sha256$")
    assert carol.check_password("carol-pass-123")
    assert post_raw(client, "/det-compat/api/v1/auth/login", body).status_code == 200


def test_production_settings_put_the_determined_hasher_first():
    import ckptweb.settings as production

    assert production.PASSWORD_HASHERS[0] == (
        "ckptweb.detcompat.hashers.DeterminedPBKDF2PasswordHasher"
    )


def test_missing_bad_and_expired_tokens_are_401(client, alice):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "Token x"}):
        response = client.get("/det-compat/api/v1/me", **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"].startswith("Bearer")
        det_error(response)
    token = issue_token(alice)
    DetToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.get("/det-compat/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert expired.status_code == 401 and "expired" in det_error(expired)
    assert not DetToken.objects.exists()


def test_logout_revokes_only_that_token(client, alice):
    first, second = issue_token(alice), issue_token(alice)
    out = client.post("/det-compat/api/v1/auth/logout", HTTP_AUTHORIZATION=f"Bearer {first}")
    assert out.status_code == 200
    assert (
        client.get("/det-compat/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 401
    )
    assert (
        client.get("/det-compat/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {second}").status_code
        == 200
    )


def test_tokens_are_stored_as_digests(alice):
    token = issue_token(alice)
    row = DetToken.objects.get()
    assert token not in row.key_hash and len(row.key_hash) == 64
    assert row.expires_at > timezone.now() + timedelta(hours=167)


def test_bad_parameters_are_400_naming_them(client, alice, default_storage):
    experiment, by_number = spec_example(alice)
    auth = bearer(alice)
    base = f"/det-compat/api/v1/experiments/{experiment.pk}"
    for query, field in (
        ("sortByAttr=SORT_BY_NONSENSE", "sortByAttr"),
        ("orderBy=SIDEWAYS", "orderBy"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("states=STATE_WHATEVER", "states"),
        ("sortByMetric=bad%00name", "sortByMetric"),
    ):
        response = client.get(f"{base}/checkpoints?{query}", **auth)
        assert response.status_code == 400, query
        assert det_error(response).startswith(field)
    for body, field in (
        ({"name": "  "}, "name"),
        ({"labels": "x"}, "labels"),
        ({"labels": ["x" * 256]}, "labels"),
        ({"resources": {"maxSlots": 2}}, "resources"),
        ({"checkpointStorage": {"saveTrialBest": -1}}, "checkpointStorage.saveTrialBest"),
        ({"checkpointStorage": {"saveTrialBest": "many"}}, "checkpointStorage.saveTrialBest"),
        ({"checkpointStorage": {"hostPath": "/"}}, "checkpointStorage.hostPath"),
        ({"checkpointStorage": 3}, "checkpointStorage"),
    ):
        response = client.generic("PATCH", base, json.dumps(body), **auth)
        assert response.status_code == 400, body
        assert det_error(response).startswith(field)
    rm = post_raw(
        client,
        "/det-compat/api/v1/checkpoints/rm",
        json.dumps({"checkpointUuids": [str(by_number[1].uuid)], "checkpointGlobs": []}).encode(),
        **auth,
    )
    assert rm.status_code == 400 and det_error(rm).startswith("checkpointGlobs")
    bad_uuid = client.generic(
        "DELETE", "/det-compat/api/v1/checkpoints", '{"checkpointUuids": ["x"]}', **auth
    )
    assert bad_uuid.status_code == 400 and det_error(bad_uuid).startswith("checkpointUuids")
    for url in (
        "/det-compat/api/v1/checkpoints/not-a-uuid",
        f"{base}9/checkpoints",
        "/det-compat/api/v1/experiments/%C2%B2",  # a "digit" int() refuses
        "/det-compat/experiments/99999999999999999999/preview_gc",
    ):
        assert client.get(url, **auth).status_code == 404


def test_listing_pages_sorts_and_filters(client, alice, default_storage):
    experiment, by_number = spec_example(alice)
    Checkpoint.objects.filter(pk=by_number[1].pk).update(state="DELETING")
    auth = bearer(alice)
    base = f"/det-compat/api/v1/experiments/{experiment.pk}/checkpoints"
    page = client.get(
        f"{base}?sortByAttr=SORT_BY_BATCH_NUMBER&orderBy=ORDER_BY_DESC&limit=3&offset=2", **auth
    ).json()
    assert page["pagination"] == {
        "offset": 2,
        "limit": 3,
        "startIndex": 2,
        "endIndex": 5,
        "total": 10,
    }
    assert [c["metadata"]["steps_completed"] for c in page["checkpoints"]] == [400, 400, 300]
    partial = client.get(f"{base}?states=STATE_PARTIALLY_DELETED", **auth).json()
    # DELETING has no Determined state: it shows as (and filters as) PARTIALLY_DELETED.
    assert [c["uuid"] for c in partial["checkpoints"]] == [str(by_number[1].uuid)]
    assert partial["checkpoints"][0]["state"] == "STATE_PARTIALLY_DELETED"
    worst = client.get(f"{base}?sortByAttr=SORT_BY_SEARCHER_METRIC&orderBy=ORDER_BY_DESC", **auth)
    metrics = [c["training"]["searcherMetric"] for c in worst.json()["checkpoints"]]
    assert metrics == [0.6, 0.5, 0.4, 0.3, 0.2]


def test_an_oversized_body_is_a_json_413(client, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"checkpointUuids": ["x" * 2000]})
    response = client.generic("DELETE", "/det-compat/api/v1/checkpoints", body, **bearer(alice))
    assert response.status_code == 413
    assert "over 1000 bytes" in det_error(response)


def test_rm_of_several_checkpoints_skips_those_without_matches(
    client, alice, default_storage, django_capture_on_commit_callbacks
):
    experiment, by_number = spec_example(alice)
    one, two = by_number[1], by_number[2]
    Checkpoint.objects.filter(pk=two.pk).update(resources={"weights.bin": 10})
    body = {"checkpointUuids": [str(one.uuid), str(two.uuid)], "checkpointGlobs": ["code/*"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = post_raw(
            client, "/det-compat/api/v1/checkpoints/rm", json.dumps(body).encode(), **bearer(alice)
        )
    assert response.status_code == 200, response.content
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.state == "PARTIALLY_DELETED" and not any(
        p.startswith("code/") for p in one.resources
    )
    assert two.state == "COMPLETED" and two.resources == {"weights.bin": 10}
    # Globs matching nothing anywhere: 200 and nothing done, as Determined answers.
    runs_before = GCRun.objects.count()
    nothing = {"checkpointUuids": [str(two.uuid)], "checkpointGlobs": ["code/*"]}
    answered = post_raw(
        client, "/det-compat/api/v1/checkpoints/rm", json.dumps(nothing).encode(), **bearer(alice)
    )
    assert answered.status_code == 200 and answered.json() == {}
    two.refresh_from_db()
    assert two.state == "COMPLETED" and two.resources == {"weights.bin": 10}
    assert GCRun.objects.count() == runs_before


def test_admin_lists_tokens_without_their_digest(staff_client, alice):
    issue_token(alice)
    client = staff_client
    listing = client.get("/admin/detcompat/dettoken/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    row = DetToken.objects.get()
    detail = client.get(f"/admin/detcompat/dettoken/{row.pk}/change/").content.decode()
    assert row.key_hash not in detail
    assert (
        client.post(f"/admin/detcompat/dettoken/{row.pk}/delete/", {"post": "yes"}).status_code
        == 302
    )
    assert not DetToken.objects.exists()
