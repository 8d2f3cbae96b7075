"""Edits with the real ``det`` CLI and SDK (determined 0.38.1) against /det-compat/:
checkpoint metadata, experiment name, description, labels, notes, archive and delete,
checked in ckptweb's database and its own API."""

from __future__ import annotations

import json

import pytest

from ckptweb.detcompat.auth import issue_token
from experiments.models import Checkpoint, Experiment, GCRun
from tests.detcompat.helpers import assert_clean_error, ckptweb_api
from tests.factories import make_experiment
from tests.spec import spec_example

pytestmark = pytest.mark.django_db(transaction=True)

OWNER_ONLY = "Only the experiment's owner or staff may change it."


def test_sdk_adds_and_removes_checkpoint_metadata(det_python, master, alice, default_storage):
    experiment, by_number = spec_example(alice)
    checkpoint = by_number[7]
    before = dict(checkpoint.metadata)
    result = det_python(
        f"""
        import json
        from determined.experimental import client
        client.login({master!r}, "alice", "alice-pass-123")
        ckpt = client.get_checkpoint({str(checkpoint.uuid)!r})
        ckpt.add_metadata({{"stage": "prod", "score": 0.9}})
        ckpt.remove_metadata(["score"])
        again = client.get_checkpoint({str(checkpoint.uuid)!r})
        print(json.dumps(again.metadata))
        """
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    checkpoint.refresh_from_db()
    assert checkpoint.metadata == {**before, "stage": "prod"}
    assert seen == {**checkpoint.metadata, "steps_completed": checkpoint.steps_completed}
    ours = ckptweb_api(alice).get(f"/api/v1/checkpoints/{checkpoint.uuid}").json()
    assert ours["metadata"] == checkpoint.metadata


def test_cli_sets_name_description_and_labels(det, alice, default_storage):
    experiment, _ = spec_example(alice)
    assert det("experiment", "set", "name", experiment.pk, "renamed").returncode == 0
    assert det("experiment", "set", "description", experiment.pk, "a note").returncode == 0
    for label in ("prod", "resnet", "prod"):
        added = det("experiment", "label", "add", experiment.pk, label)
        assert added.returncode == 0, added.stderr
    removed = det("experiment", "label", "remove", experiment.pk, "resnet")
    assert removed.returncode == 0, removed.stderr
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description) == ("renamed", "a note")
    assert experiment.labels == ["prod"]
    ours = ckptweb_api(alice).get(f"/api/v1/experiments/{experiment.pk}").json()
    assert ours["name"] == "renamed" and ours["labels"] == ["prod"]
    listed = ckptweb_api(alice).get("/api/v1/experiments?label=prod").json()["results"]
    assert [e["id"] for e in listed] == [experiment.pk]


def test_sdk_notes_and_labels(det_python, master, alice, default_storage):
    experiment, _ = spec_example(alice)
    result = det_python(
        f"""
        import json
        from determined.experimental import client
        client.login({master!r}, "alice", "alice-pass-123")
        exp = client.get_experiment({experiment.pk})
        exp.set_notes("# findings")
        exp.add_label("a")
        exp.add_label("b")
        exp.remove_label("a")
        exp.set_name("via sdk")
        exp.reload()
        print(json.dumps({{"labels": sorted(exp.labels), "notes": exp.notes, "name": exp.name}}))
        """
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    experiment.refresh_from_db()
    assert seen == {"labels": ["b"], "notes": "# findings", "name": "via sdk"}
    assert (experiment.labels, experiment.notes, experiment.name) == (
        ["b"],
        "# findings",
        "via sdk",
    )


def test_archive_and_unarchive(det, alice, default_storage):
    experiment, _ = spec_example(alice)
    archived = det("experiment", "archive", experiment.pk)
    assert archived.returncode == 0, archived.stderr
    experiment.refresh_from_db()
    assert experiment.archived
    assert ckptweb_api(alice).get("/api/v1/experiments").json()["results"] == []
    shown = ckptweb_api(alice).get("/api/v1/experiments?archived=true").json()["results"]
    assert [e["id"] for e in shown] == [experiment.pk]
    assert "ID" in det("experiment", "list").stdout  # an empty table, no error
    assert str(experiment.pk) not in det("experiment", "list", "--csv").stdout.split("\n", 1)[1]

    unarchived = det("experiment", "unarchive", experiment.pk)
    assert unarchived.returncode == 0, unarchived.stderr
    experiment.refresh_from_db()
    assert not experiment.archived


def test_others_cannot_edit_and_bad_labels_are_refused(det, alice, bob, default_storage):
    experiment, by_number = spec_example(alice)
    bob_token = issue_token(bob)
    for args in (
        ("experiment", "set", "name", experiment.pk, "mine"),
        ("experiment", "label", "add", experiment.pk, "x"),
        ("experiment", "archive", experiment.pk),
        ("experiment", "delete", experiment.pk, "--yes"),
    ):
        refused = det(*args, user="bob", token=bob_token)
        assert_clean_error(refused, OWNER_ONLY)
    experiment.refresh_from_db()
    assert (experiment.name, experiment.labels, experiment.archived) == ("spec-example", [], False)
    assert experiment.state != "DELETING"

    too_long = det("experiment", "label", "add", experiment.pk, "x" * 300)
    assert_clean_error(too_long, "labels")
    experiment.refresh_from_db()
    assert experiment.labels == []


def test_cli_and_sdk_delete_through_the_deletion_service(
    det, det_python, master, alice, default_storage
):
    experiment, _ = spec_example(alice)
    other = make_experiment(alice, default_storage, name="second")
    deleted = det("experiment", "delete", experiment.pk, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    state = Experiment.objects.filter(pk=experiment.pk).values_list("state", flat=True).first()
    assert state in ("DELETING", None)  # the run may already have removed the rows
    if state is not None:  # the deletion service's run, not a rule of its own
        runs = GCRun.objects.filter(experiment_id=experiment.pk, reason="EXPERIMENT_DELETED")
        assert runs.exists()
    again = ckptweb_api(alice).delete(f"/api/v1/experiments/{experiment.pk}")
    assert again.status_code in (404, 409)

    result = det_python(
        f"""
        from determined.experimental import client
        client.login({master!r}, "alice", "alice-pass-123")
        client.get_experiment({other.pk}).delete()
        """
    )
    assert result.returncode == 0, result.stderr
    state = Experiment.objects.filter(pk=other.pk).values_list("state", flat=True).first()
    assert state in ("DELETING", None)


def test_protected_checkpoint_refuses_delete(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    Checkpoint.objects.filter(pk=by_number[7].pk).update(protected=True)
    refused = det("experiment", "delete", experiment.pk, "--yes")
    assert_clean_error(refused, "protected")
    experiment.refresh_from_db()
    assert experiment.state != "DELETING"


def test_rm_glob_matching_nothing_answers_200(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    checkpoint = by_number[6]
    before = dict(checkpoint.resources)
    result = det("checkpoint", "rm", checkpoint.uuid, "--glob", "nothing/*", "--yes")
    assert result.returncode == 0, result.stderr
    checkpoint.refresh_from_db()
    assert checkpoint.state == "COMPLETED" and checkpoint.resources == before
