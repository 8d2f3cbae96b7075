"""Determined's model registry (``det model ...`` and the SDK, determined 0.38.1 unmodified)
over ckptweb's registry: after each call, ckptweb's database and its own API agree."""

from __future__ import annotations

import json

import pytest

from ckptweb.detcompat.auth import issue_token
from experiments.models import Checkpoint, Model, ModelVersion, RetiredModelName
from tests.detcompat.helpers import assert_clean_error, ckptweb_api
from tests.factories import add_checkpoints, make_experiment
from tests.spec import spec_example

pytestmark = pytest.mark.django_db(transaction=True)


def sdk_out(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_det_model_commands_over_ckptweb_registry(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    best, other = by_number[8], by_number[5]

    created = det("model", "create", "resnet", "--description", "the production net", "--json")
    assert created.returncode == 0, created.stderr
    model = Model.objects.get(name="resnet")
    assert (model.owner, model.description, model.labels) == (alice, "the production net", [])
    shown = json.loads(created.stdout)
    assert (shown["id"], shown["name"], shown["description"]) == (
        model.pk,
        "resnet",
        "the production net",
    )
    assert shown["metadata"] == {} and shown["archived"] is False

    registered = det("model", "register-version", "resnet", best.uuid)
    assert registered.returncode == 0, registered.stderr
    assert str(best.uuid) in registered.stdout
    version = ModelVersion.objects.get(model=model)
    assert (version.version, version.checkpoint, version.registered_by) == (1, best, alice)
    # The CLI's --json form posts to models/{id}/versions (the numeric id in the path).
    by_id = det("model", "register-version", "resnet", other.uuid, "--json")
    assert by_id.returncode == 0, by_id.stderr
    second = json.loads(by_id.stdout)["modelVersion"]
    assert second["version"] == 2 and second["checkpoint"]["uuid"] == str(other.uuid)
    assert second["model"]["id"] == model.pk and second["username"] == "alice"
    ours = ckptweb_api(alice).get("/api/v1/models/resnet").json()
    assert [(v["version"], v["checkpoint"]) for v in ours["versions"]] == [
        (2, str(other.uuid)),
        (1, str(best.uuid)),
    ]

    listed = det("model", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(m["name"], m["id"]) for m in json.loads(listed.stdout)] == [("resnet", model.pk)]
    table = det("model", "list")
    assert table.returncode == 0, table.stderr
    assert "resnet" in table.stdout

    described = det("model", "describe", "resnet")  # the latest version
    assert described.returncode == 0, described.stderr
    assert "the production net" in described.stdout
    assert str(other.uuid) in described.stdout and str(best.uuid) not in described.stdout
    first = det("model", "describe", "resnet", "--version", "1")
    assert first.returncode == 0, first.stderr
    assert str(best.uuid) in first.stdout and "validation_loss" in first.stdout

    versions = det("model", "list-versions", "resnet")
    assert versions.returncode == 0, versions.stderr
    assert str(best.uuid) in versions.stdout and str(other.uuid) in versions.stdout
    as_json = det("model", "list-versions", "resnet", "--json")  # models/{id}/versions
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [v["version"] for v in data["modelVersions"]] == [2, 1]
    assert data["model"]["numVersions"] == 2
    assert data["pagination"]["total"] == 2
    assert data["modelVersions"][1]["checkpoint"]["training"]["trialId"] == best.trial_id

    deleted = det("model", "delete", "resnet")
    assert deleted.returncode == 0, deleted.stderr
    assert not Model.objects.filter(name="resnet").exists()
    assert not ModelVersion.objects.exists()
    assert RetiredModelName.objects.get(name="resnet").owner == alice  # the registry's rule
    assert Checkpoint.objects.filter(pk__in=[best.pk, other.pk]).count() == 2  # they stay
    assert ckptweb_api(alice).get("/api/v1/models/resnet").status_code == 404


def test_det_model_errors_are_ckptweb_rules(det, alice, bob, default_storage):
    experiment, by_number = spec_example(alice)
    assert det("model", "create", "resnet").returncode == 0

    taken = det("model", "create", "resnet")
    assert_clean_error(taken, "a model named 'resnet' already exists")
    bad_name = det("model", "create", "has space")
    assert_clean_error(bad_name, "name may contain only letters")
    elsewhere = det("model", "create", "other", "-w", "research")
    assert_clean_error(elsewhere, "workspaceName", "ckptweb has no workspaces")
    assert list(Model.objects.values_list("name", flat=True)) == ["resnet"]

    missing = det("model", "describe", "nope")
    assert_clean_error(missing, "model 'nope' not found")
    not_a_checkpoint = det("model", "register-version", "resnet", "not-a-uuid")
    assert_clean_error(not_a_checkpoint, "checkpointUuid", "no checkpoint")
    Checkpoint.objects.filter(pk=by_number[1].pk).update(state="DELETED")
    gone = det("model", "register-version", "resnet", by_number[1].uuid)
    assert_clean_error(gone, "only COMPLETED checkpoints can be registered")

    bob_token = issue_token(bob)
    as_bob = det("model", "register-version", "resnet", by_number[8].uuid, token=bob_token)
    assert_clean_error(as_bob, "Only the model's owner or staff may change it.")
    bob_delete = det("model", "delete", "resnet", token=bob_token)
    assert_clean_error(bob_delete, "Only the model's owner or staff may change it.")
    assert Model.objects.filter(name="resnet").exists()
    assert not ModelVersion.objects.exists()
    # Reading is open to any signed-in user, as in ckptweb's API.
    assert det("model", "describe", "resnet", token=bob_token).returncode == 0


def test_sdk_registry_calls(det_python, master, alice, default_storage):
    experiment, by_number = spec_example(alice)
    best, other = by_number[8], by_number[7]
    result = det_python(
        f"""
        import json
        from determined.experimental import client
        client.login({master!r}, "alice", "alice-pass-123")
        made = client.create_model("bert", description="nlp")
        made.set_labels(["nlp", "prod"])
        client.create_model("alexnet")
        v1 = made.register_version({str(best.uuid)!r})
        v2 = made.register_version({str(other.uuid)!r})
        model = client.get_model("bert")
        same = client.get_model(model.model_id)
        latest = model.get_version()
        first = model.get_version(1)
        listed = model.list_versions()
        ascending = model.list_versions(order_by=client.OrderBy.ASC)
        names = [m.name for m in client.list_models()]
        by_desc = [m.name for m in client.list_models(sort_by=client.ModelSortBy.DESCRIPTION,
                                                      order_by=client.OrderBy.DESC)]
        found = [m.name for m in client.list_models(name="ber")]
        model.set_description("language")
        model.set_labels(["nlp"])
        try:
            model.add_metadata({{"k": 1}})
            refused = None
        except Exception as exc:
            refused = str(exc)
        v1.delete()
        after = [v.model_version for v in model.list_versions()]
        client.get_model("alexnet").delete()
        print(json.dumps({{
            "made": [made.name, made.description, made.labels, made.metadata, made.username],
            "versions": [v1.model_version, v2.model_version],
            "v1": [v1.checkpoint.uuid, v1.model_id, v1.checkpoint.training.trial_id],
            "same": [model.model_id == same.model_id, same.name, same.labels],
            "latest": [latest.model_version, latest.checkpoint.uuid],
            "first": [first.model_version, first.checkpoint.uuid,
                      first.checkpoint.training.validation_metrics],
            "listed": [v.model_version for v in listed],
            "ascending": [v.model_version for v in ascending],
            "names": names, "by_desc": by_desc, "found": found,
            "refused": refused, "after": after,
        }}))
        """
    )
    out = sdk_out(result)
    model = Model.objects.get(name="bert")
    assert out["made"] == ["bert", "nlp", ["nlp", "prod"], {}, "alice"]
    assert out["same"] == [True, "bert", ["nlp", "prod"]]
    assert out["versions"] == [1, 2]
    assert out["v1"] == [str(best.uuid), model.pk, best.trial_id]
    assert out["latest"] == [2, str(other.uuid)]
    assert out["first"][:2] == [1, str(best.uuid)]
    assert out["first"][2]["avgMetrics"] == {"validation_loss": 0.3}
    assert out["listed"] == [2, 1] and out["ascending"] == [1, 2]
    assert out["names"] == ["alexnet", "bert"]
    assert out["by_desc"] == ["bert", "alexnet"]  # "nlp" > ""
    assert out["found"] == ["bert"]
    assert "metadata" in out["refused"]
    assert out["after"] == [2]
    # ckptweb's state after the calls.
    assert (model.description, model.labels) == ("language", ["nlp"])
    assert list(model.versions.values_list("version", "checkpoint")) == [(2, other.pk)]
    assert not Model.objects.filter(name="alexnet").exists()
    ours = ckptweb_api(alice).get("/api/v1/models/bert").json()
    assert ours["labels"] == ["nlp"] and [v["version"] for v in ours["versions"]] == [2]


def test_models_pages_and_filters(alice, bob, default_storage):
    """``read_paginated`` follows ``endIndex`` to ``total``; filters narrow the same set."""
    from experiments import registry

    for name in ("a1", "a2", "a3"):
        registry.create_model(alice, name, labels=["x"] if name != "a2" else [])
    registry.create_model(bob, "b1")
    client = ckptweb_api(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(alice)}")
    page = client.get("/det-compat/api/v1/models?limit=2&offset=1&sortBy=SORT_BY_NAME").json()
    assert [m["name"] for m in page["models"]] == ["a2", "a3"]
    assert page["pagination"] == {
        "offset": 1,
        "limit": 2,
        "startIndex": 1,
        "endIndex": 3,
        "total": 4,
    }
    last = client.get("/det-compat/api/v1/models?offset=-1&sortBy=SORT_BY_NAME").json()
    assert [m["name"] for m in last["models"]] == ["b1"]
    for query, names in (
        ("labels=x", ["a1", "a3"]),
        ("users=bob", ["b1"]),
        ("archived=true", []),
        ("workspaceIds=1", ["a1", "a2", "a3", "b1"]),
        ("workspaceNames=research", []),
        (f"id={Model.objects.get(name='a2').pk}", ["a2"]),
    ):
        body = client.get(f"/det-compat/api/v1/models?{query}").json()
        assert [m["name"] for m in body["models"]] == names, query
    bad = client.get("/det-compat/api/v1/models?sortBy=SORT_BY_COLOUR")
    assert bad.status_code == 400 and "sortBy" in bad.json()["message"]


def test_sdk_version_delete_follows_who_may_release_a_pin(
    det_python, master, alice, bob, default_storage
):
    """The owner of the pinned checkpoint's experiment may delete the version (so nobody
    makes another user's data undeletable); anyone else but the model's owner or staff
    may not."""
    from experiments import registry, services

    _, alices = spec_example(alice)
    bobs_trial = services.create_trial(make_experiment(bob, default_storage))
    (bobs,) = add_checkpoints(bobs_trial, [(10, 0.5)])
    model = registry.create_model(alice, "mixed", labels=["prod", "cv"])
    registry.create_model(alice, "other", labels=["prod"])
    registry.register_version(model, bobs, alice)  # v1 pins bob's checkpoint
    registry.register_version(model, alices[8], alice)  # v2 pins alice's
    result = det_python(
        f"""
        import json
        from determined.experimental import client
        client.login({master!r}, "bob", "bob-pass-123")
        model = client.get_model("mixed")
        try:
            model.get_version(2).delete()
            refused = None
        except Exception as exc:
            refused = str(exc)
        model.get_version(1).delete()
        print(json.dumps({{
            "refused": refused,
            "left": [v.model_version for v in model.list_versions()],
            "labels": client.get_model_labels(),
        }}))
        """
    )
    out = sdk_out(result)
    assert "Only the model's owner, the owner of the pinned checkpoint" in out["refused"]
    assert out["left"] == [2]
    assert out["labels"] == ["prod", "cv"]  # most used first
    assert list(model.versions.values_list("version", "checkpoint")) == [(2, alices[8].pk)]
    assert not bobs.model_versions.exists()  # bob's checkpoint is no longer pinned


def test_bad_requests_name_the_field(alice, bob, default_storage):
    """What ckptweb cannot store is refused by name, never dropped; lookups are JSON 404s."""
    from experiments import registry

    _, by_number = spec_example(alice)
    registry.create_model(alice, "resnet")
    client = ckptweb_api(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(alice)}")
    base = "/det-compat/api/v1/models"
    cases = [
        ("post", base, {"name": "x", "metadata": {"k": 1}}, 400, "metadata"),
        ("post", base, {"name": "x", "colour": "red"}, 400, "colour"),
        ("post", base, {"name": "x", "workspaceId": 7}, 400, "workspaceId"),
        ("post", base, {"name": "x", "labels": ["has space"]}, 400, "labels"),
        ("post", base, "not json", 400, "body"),
        ("patch", f"{base}/resnet", {"name": "renamed"}, 400, "cannot be renamed"),
        ("patch", f"{base}/resnet", {"notes": "readme"}, 400, "notes"),
        (
            "post",
            f"{base}/resnet/versions",
            {"checkpointUuid": str(by_number[8].uuid), "labels": ["a"]},
            400,
            "labels",
        ),
        ("post", f"{base}/resnet/versions", {}, 400, "checkpointUuid"),
        ("get", f"{base}/resnet/versions/abc", None, 404, "no version abc"),
        ("get", f"{base}/nope/versions", None, 404, "model 'nope' not found"),
        ("delete", f"{base}/resnet/versions/latest", None, 400, "version"),
    ]
    for method, url, body, status, word in cases:
        data = body if isinstance(body, str) else json.dumps(body) if body is not None else None
        response = getattr(client, method)(url, data=data, content_type="text/plain")
        assert response.status_code == status, (url, body, response.content)
        message = response.json()["error"]["error"]
        assert word in message, (url, body, message)
    assert list(Model.objects.values_list("name", "description")) == [("resnet", "")]
    assert not ModelVersion.objects.exists()
    anonymous = ckptweb_api(None).get(base)
    assert anonymous.status_code == 401
