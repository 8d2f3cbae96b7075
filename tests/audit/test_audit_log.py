"""The audit log (``ckptweb.audit``): every destructive action through the API, the pages'
sign-in and the admin's storage form leaves one row naming the person, the address and the
change, never a secret; rows are never edited; each user sees what concerns them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import models
from django.utils import timezone
from rest_framework.test import APIClient

from ckptweb.accounts.services import create_token
from ckptweb.audit.models import Action, AuditEvent
from ckptweb.audit.record import prune, record
from experiments import services
from experiments.models import Checkpoint
from storage.models import StorageConfig
from tests import factories

FILES = {"weights.bin": b"w" * 10, "metadata.json": b"{}"}


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_token(user, 'test')[1]}")
    return client


@pytest.fixture
def checkpoints(alice, default_storage):
    experiment = factories.make_experiment(alice, default_storage)
    trial = services.create_trial(experiment, {})
    return [
        factories.report_with_files(default_storage, trial, steps, FILES, metric=1.0 / steps)
        for steps in (1, 2, 3, 4)
    ]


def events():
    """The events after the test's own token was made (``token_client`` records one)."""
    return list(AuditEvent.objects.exclude(action=Action.TOKEN_CREATE).order_by("id"))


def test_every_destructive_api_action_leaves_one_row_naming_the_person(alice, checkpoints):
    api = token_client(alice)
    experiment = checkpoints[0].experiment
    first, second, third, fourth = (str(c.uuid) for c in checkpoints)
    policy = {"save_experiment_best": 2, "save_trial_best": 0, "save_trial_latest": 1}

    calls = [
        ("put", f"/api/v1/experiments/{experiment.pk}/gc-policy", policy),
        ("patch", f"/api/v1/checkpoints/{first}", {"protected": True}),
        ("patch", f"/api/v1/checkpoints/{first}", {"protected": False}),
        ("post", f"/api/v1/checkpoints/{second}/rm", {"globs": ["weights.bin"]}),
        ("post", "/api/v1/models", {"name": "prod"}),
        ("post", "/api/v1/models/prod/versions", {"checkpoint": fourth}),
        ("delete", "/api/v1/models/prod/versions/1", None),
        ("delete", "/api/v1/models/prod", None),
        ("delete", f"/api/v1/checkpoints/{third}", None),
    ]
    for method, url, body in calls:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code < 300, (url, response.content)

    rows = events()
    assert [row.action for row in rows] == [
        Action.GC_POLICY_SET,
        Action.CHECKPOINT_PROTECT,
        Action.CHECKPOINT_UNPROTECT,
        Action.CHECKPOINT_RM,
        Action.MODEL_CREATE,
        Action.VERSION_REGISTER,
        Action.VERSION_DELETE,
        Action.MODEL_DELETE,
        Action.CHECKPOINT_DELETE,
    ]
    assert {(row.actor_id, row.actor_name, row.ip) for row in rows} == {
        (alice.pk, "alice", "127.0.0.1")
    }
    assert {row.owner_id for row in rows} == {alice.pk}
    policy_set, protect, unprotect, rm, *_, deleted = rows
    assert policy_set.before == {
        "save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1
    }  # fmt: skip
    assert policy_set.after["save_experiment_best"] == 2 and policy_set.after["gc_run"]
    assert (protect.target_id, protect.after["protected"]) == (first, True)
    assert protect.after["checkpoints"] == {"items": [first], "count": 1}
    assert unprotect.before == {"protected": True} and unprotect.after["protected"] is False
    assert rm.after["globs"] == ["weights.bin"] and rm.experiment_id == experiment.pk
    assert rows[5].after == {"model": "prod", "version": 1, "checkpoint": fourth}
    assert (deleted.target_type, deleted.target_id) == ("checkpoint", third)

    # Deleting the experiment: one more row; ending an experiment is the system's GC run.
    Checkpoint.objects.filter(uuid=first).update(protected=False)
    assert api.delete(f"/api/v1/experiments/{experiment.pk}").status_code == 202
    last = AuditEvent.objects.latest("id")
    assert (last.action, last.before["name"], last.after["state"]) == (
        Action.EXPERIMENT_DELETE,
        experiment.name,
        "DELETING",
    )


def test_an_experiment_that_ends_records_the_gc_run_it_starts(alice, checkpoints, alice_api):
    experiment = checkpoints[0].experiment
    response = alice_api.patch(
        f"/api/v1/experiments/{experiment.pk}", {"state": "COMPLETED"}, format="json"
    )
    assert response.status_code == 200
    (row,) = AuditEvent.objects.filter(action=Action.GC_RUN_STARTED)
    assert row.actor_name == "alice" and row.after["reason"] == "EXPERIMENT_TERMINAL"
    assert row.experiment_id == experiment.pk


def test_outside_a_request_the_actor_is_the_system(alice):
    row = record(Action.GC_RUN_STARTED, "experiment", 7, after={"reason": "SWEEP"})
    assert (row.actor, row.actor_name, row.ip) == (None, "", None)


def test_sign_ins_and_failed_sign_ins_are_recorded_without_the_password(alice, client):
    wrong = client.post("/accounts/login/", {"username": "alice", "password": "not-it-9876"})
    right = client.post(
        "/accounts/login/", {"username": "alice", "password": factories.password_for("alice")}
    )

    assert wrong.status_code == 200 and right.status_code == 302
    failed, signed_in = events()
    assert (failed.action, failed.actor, failed.after) == (
        Action.SIGN_IN_FAILED,
        None,
        {"username": "alice"},
    )
    assert failed.ip == "127.0.0.1"
    assert (signed_in.action, signed_in.actor_id, signed_in.after) == (
        Action.SIGN_IN,
        alice.pk,
        {"via": "web"},
    )
    dumped = json.dumps([[e.before, e.after, e.target_id] for e in events()])
    assert "not-it-9876" not in dumped and factories.password_for("alice") not in dumped


def test_a_storage_change_in_the_admin_is_recorded_without_its_secrets(
    staff_client, default_storage
):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"
    config = StorageConfig.objects.create(
        name="s3-main", type="s3", bucket="b", access_key="AKIAEXAMPLE", secret_key=secret
    )
    url = f"/admin/storage/storageconfig/{config.pk}/change/"
    form = staff_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data |= {"bucket": "other-bucket", "endpoint_url": "http://user:pw-in-url@127.0.0.1:9"}
    data["secret_key"] = ""  # left blank: the secret is kept (write-only field)

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    (row,) = AuditEvent.objects.filter(action=Action.STORAGE_CHANGE)
    assert row.actor_name == "staff" and row.target_id == str(config.pk)
    assert (row.before["bucket"], row.after["bucket"]) == ("b", "other-bucket")
    assert row.before["secret_key"] == row.after["secret_key"] == "********"
    dumped = json.dumps([row.before, row.after])
    assert secret not in dumped and "pw-in-url" not in dumped


def test_rows_are_never_edited(alice):
    row = record(Action.SIGN_IN, "user", alice.pk, actor=alice)
    row.action = Action.TOKEN_CREATE
    with pytest.raises(TypeError, match="never edited"):
        row.save()
    with pytest.raises(TypeError, match="never edited"):
        AuditEvent.objects.filter(pk=row.pk).update(action=Action.TOKEN_CREATE)
    assert AuditEvent.objects.get(pk=row.pk).action == Action.SIGN_IN


def test_retention_deletes_only_the_rows_past_it(alice, settings):
    settings.CKPTWEB_AUDIT_RETENTION_DAYS = 30
    old, recent = (record(Action.SIGN_IN, "user", alice.pk, actor=alice) for _ in range(2))
    # The one way to age a row in a test: the plain QuerySet's update (the manager refuses).
    models.QuerySet.update(
        AuditEvent.objects.filter(pk=old.pk), at=timezone.now() - timedelta(days=31)
    )

    assert prune() == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    settings.CKPTWEB_AUDIT_RETENTION_DAYS = 0
    assert prune(timezone.now() + timedelta(days=3650)) == 0


def test_each_user_sees_what_concerns_them(alice, bob, staff, checkpoints, alice_api):
    experiment = checkpoints[0].experiment
    uuid = str(checkpoints[0].uuid)
    alice_api.patch(f"/api/v1/checkpoints/{uuid}", {"protected": True}, format="json")
    record(Action.SIGN_IN, "user", bob.pk, owner_id=bob.pk, actor=bob)

    def seen(user, query=""):
        response = factories.client_for(user, api=True).get(f"/api/v1/audit-events{query}")
        assert response.status_code == 200, response.content
        return [(e["action"], e["actor"]) for e in response.json()["results"]]

    assert seen(alice) == [("checkpoint.protect", "alice")]
    assert seen(bob) == [("signin", "bob")]
    assert seen(staff) == [("signin", "bob"), ("checkpoint.protect", "alice")]
    assert seen(staff, f"?experiment={experiment.pk}") == [("checkpoint.protect", "alice")]
    assert seen(staff, "?actor=bob&action=signin") == [("signin", "bob")]
    assert seen(staff, "?since=2999-01-01") == []
    bad = factories.client_for(staff, api=True).get("/api/v1/audit-events?since=yesterday")
    assert bad.status_code == 400 and "since" in bad.json()["message"]
    assert factories.client_for(None, api=True).get("/api/v1/audit-events").status_code == 401


def test_the_audit_page_lists_and_filters(alice, bob, checkpoints, alice_client, client_for):
    uuid = str(checkpoints[0].uuid)
    factories.client_for(alice, api=True).patch(
        f"/api/v1/checkpoints/{uuid}", {"protected": True}, format="json"
    )

    page = alice_client.get("/audit/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-action="checkpoint.protect"' in body and uuid in body
    assert 'data-action="checkpoint.protect"' not in client_for(bob).get("/audit/").content.decode()
    filtered = alice_client.get("/audit/?action=model.create").content.decode()
    assert "data-action=" not in filtered and "No audit log match" in filtered
    invalid = alice_client.get("/audit/?since=nope")
    assert invalid.status_code == 200 and "since:" in invalid.content.decode()
