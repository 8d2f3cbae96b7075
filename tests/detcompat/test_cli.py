"""The real ``det`` CLI (determined 0.38.1) against ckptweb's /det-compat/, compared with
ckptweb's own API: same checkpoints, same retained set, same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from ckptweb.detcompat.models import DetToken
from experiments.models import Checkpoint
from tests.detcompat.helpers import (
    assert_clean_error,
    ckptweb_api,
    ckptweb_download,
    csv_rows,
    tree,
)
from tests.factories import password_for
from tests.spec import spec_example

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_PASSWORD = password_for("alice")
LOGIN = "/det-compat/api/v1/auth/login"


def test_user_login_reads_the_password_from_stdin_and_logout_revokes_that_token(
    det, alice, alice_token
):
    login = det("user", "login", "alice", input=f"{ALICE_PASSWORD}\n", user=None, token="")
    assert login.returncode == 0, login.stderr
    assert DetToken.objects.filter(user=alice).count() == 2  # alice_token + the new one
    # No DET_USER/DET_USER_TOKEN now: the CLI uses the token it cached in the temp HOME.
    whoami = det("user", "whoami", user=None, token="")
    assert whoami.returncode == 0, whoami.stderr
    assert "You are logged in as user 'alice'" in whoami.stdout

    logout = det("user", "logout", user=None, token="")
    assert logout.returncode == 0, logout.stderr
    assert DetToken.objects.filter(user=alice).count() == 1  # only that token went
    still = det("user", "whoami")  # alice_token still works
    assert still.returncode == 0, still.stderr


def test_wrong_password_is_refused(det, alice):
    result = det("user", "login", "alice", input="wrong-password\n", user=None, token="")
    assert_clean_error(result, "invalid credentials")
    assert DetToken.objects.filter(user=alice).count() == 1  # only the fixture's token


def test_a_locked_login_prints_why(det, alice):
    """After 10 wrong passwords from this address (settings.AXES_FAILURE_LIMIT), even the
    right one is refused, and ``det`` says why and until when."""
    guess = {"username": "alice", "password": "wrong", "isHashed": False}
    guesses = [Client().post(LOGIN, guess, content_type="application/json") for _ in range(10)]
    assert [r.status_code for r in guesses] == [403] * 9 + [429]
    result = det("user", "login", "alice", input=f"{ALICE_PASSWORD}\n", user=None, token="")
    assert_clean_error(result, "too many failed sign-ins as 'alice'", "try again in 15 minutes")
    assert "Forbidden" not in result.stderr
    assert DetToken.objects.filter(user=alice).count() == 1  # only the fixture's token


def test_list_checkpoints_matches_ckptweb(det, alice, default_storage):
    experiment, _ = spec_example(alice)
    result = det("e", "lc", experiment.pk, "--csv")
    assert result.returncode == 0, result.stderr
    rows = csv_rows(result.stdout)
    ours = ckptweb_api(alice).get(
        f"/api/v1/experiments/{experiment.pk}/checkpoints?ordering=report_time"
    )
    expected = ours.json()["results"]
    assert [r["UUID"] for r in rows] == [c["uuid"] for c in expected]
    assert [int(r["# of Batches"]) for r in rows] == [c["steps_completed"] for c in expected]
    assert [r["Validation Metric"] for r in rows] == [
        "" if c["validation_metric"] is None else str(c["validation_metric"]) for c in expected
    ]
    assert {r["State"] for r in rows} == {"COMPLETED"}

    table = det("e", "lc", experiment.pk)  # the human table prints too
    assert table.returncode == 0, table.stderr
    assert all(c["uuid"] in table.stdout for c in expected)


def test_best_n_matches_ckptweb(det, alice, default_storage):
    experiment, _ = spec_example(alice)
    result = det("e", "lc", experiment.pk, "--best", 3, "--csv")
    assert result.returncode == 0, result.stderr
    best = ckptweb_api(alice).get(
        f"/api/v1/experiments/{experiment.pk}/checkpoints"
        "?ordering=validation_metric&state=COMPLETED"
    )
    expected = [c for c in best.json()["results"] if c["validation_metric"] is not None][:3]
    assert [r["UUID"] for r in csv_rows(result.stdout)] == [c["uuid"] for c in expected]
    assert [float(r["Validation Metric"]) for r in csv_rows(result.stdout)] == [0.2, 0.3, 0.4]


def test_checkpoint_describe(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    checkpoint = by_number[5]
    result = det("checkpoint", "describe", checkpoint.uuid)
    assert result.returncode == 0, result.stderr
    assert str(checkpoint.uuid) in result.stdout
    assert '"validation_loss": 0.4' in result.stdout
    assert '"steps_completed": 500' in result.stdout
    assert '"framework": "torch"' in result.stdout


@pytest.mark.parametrize("mode", ["master", "auto"])
def test_download_is_byte_identical_to_ckptweb(det, alice, default_storage, tmp_path, mode):
    experiment, by_number = spec_example(alice)
    checkpoint = by_number[7]
    target = tmp_path / f"det-{mode}"
    result = det("checkpoint", "download", checkpoint.uuid, "--mode", mode, "-o", target)
    assert result.returncode == 0, result.stderr
    ours = ckptweb_download(alice, checkpoint, tmp_path / "ckptweb")
    assert tree(target) == ours
    assert set(ours) == set(checkpoint.resources)


def test_download_of_a_deleted_checkpoint_fails_cleanly(det, alice, default_storage, tmp_path):
    experiment, by_number = spec_example(alice)
    Checkpoint.objects.filter(pk=by_number[1].pk).update(state="DELETED")
    result = det("checkpoint", "download", by_number[1].uuid, "--mode", "master", "-o", tmp_path)
    assert_clean_error(result, "COMPLETED or PARTIALLY_DELETED")


def test_set_gc_policy_without_yes_previews_and_changes_nothing(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    policy = ["--save-experiment-best", 2, "--save-trial-best", 1, "--save-trial-latest", 1]
    result = det("e", "set", "gc-policy", experiment.pk, *policy, input="n\n")
    assert result.returncode == 0, result.stderr
    # (2,1,1) keeps 10, 8, 7, 5: it deletes 3 and 4 (validated) and 1, 2, 6, 9 (not).
    for number in (3, 4):
        assert str(by_number[number].uuid) in result.stdout
    for number in (1, 2, 5, 6, 7, 8, 9, 10):
        assert str(by_number[number].uuid) not in result.stdout
    assert "delete 2 checkpoints with validations and 4 checkpoints without" in result.stdout
    assert "Aborting" in result.stdout
    ours = ckptweb_api(alice).get(
        f"/api/v1/experiments/{experiment.pk}/gc-preview"
        "?save_experiment_best=2&save_trial_best=1&save_trial_latest=1"
    )
    assert len(ours.json()["deleted_ids"]) == 6
    experiment.refresh_from_db()
    assert experiment.save_experiment_best is None  # unchanged
    assert experiment.checkpoints.filter(state="COMPLETED").count() == 10


def test_set_gc_policy_names_the_running_trials_it_cuts_off(det, alice, default_storage):
    """The example is still running (ACTIVE, both trials ACTIVE): 0/0/0 deletes each trial's
    latest (5, validated; 10, not), and det's confirmation lists both, saying why."""
    experiment, by_number = spec_example(alice)
    policy = ["--save-experiment-best", 0, "--save-trial-best", 0, "--save-trial-latest", 0]
    result = det("e", "set", "gc-policy", experiment.pk, *policy, input="n\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for number in (5, 10):
        checkpoint = by_number[number]
        (line,) = [line for line in lines if str(checkpoint.uuid) in line]
        assert f"latest of running trial {checkpoint.trial_id}" in line
    (other,) = [line for line in lines if str(by_number[4].uuid) in line]
    assert "running trial" not in other
    # 3, 4, 5, 7, 8 are validated; 10 is listed for its trial, so det counts it with them.
    assert "delete 6 checkpoints with validations and 4 checkpoints without" in result.stdout
    assert experiment.checkpoints.filter(state="COMPLETED").count() == 10


def test_set_gc_policy_yes_leaves_the_spec_row(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    policy = ["--save-experiment-best", 2, "--save-trial-best", 1, "--save-trial-latest", 1]
    result = det("e", "set", "gc-policy", experiment.pk, *policy, "--yes")
    assert result.returncode == 0, result.stderr
    experiment.refresh_from_db()
    assert experiment.gc_policy.as_dict() == {
        "save_experiment_best": 2,
        "save_trial_best": 1,
        "save_trial_latest": 1,
    }
    kept = {n for n, c in by_number.items() if Checkpoint.objects.get(pk=c.pk).state == "COMPLETED"}
    assert kept == {10, 8, 7, 5}
    root = Path(default_storage.host_path)
    for number, checkpoint in by_number.items():
        assert (root / str(checkpoint.uuid)).exists() == (number in kept)
    listed = ckptweb_api(alice).get(
        f"/api/v1/experiments/{experiment.pk}/checkpoints?state=COMPLETED"
    )
    assert {c["uuid"] for c in listed.json()["results"]} == {str(by_number[n].uuid) for n in kept}
    after = det("e", "lc", experiment.pk, "--csv")
    states = {r["UUID"]: r["State"] for r in csv_rows(after.stdout)}
    assert states[str(by_number[10].uuid)] == "COMPLETED"
    assert states[str(by_number[1].uuid)] == "DELETED"


def test_checkpoint_delete(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    first, second = by_number[1], by_number[2]
    result = det("checkpoint", "delete", f"{first.uuid},{second.uuid}", "--yes")
    assert result.returncode == 0, result.stderr
    assert "is in progress" in result.stdout
    root = Path(default_storage.host_path)
    for checkpoint in (first, second):
        checkpoint.refresh_from_db()
        assert checkpoint.state == "DELETED"
        assert not (root / str(checkpoint.uuid)).exists()
    assert ckptweb_api(alice).get(f"/api/v1/checkpoints/{first.uuid}").json()["state"] == "DELETED"

    Checkpoint.objects.filter(pk=by_number[3].pk).update(protected=True)
    refused = det("checkpoint", "delete", f"{by_number[4].uuid},{by_number[3].uuid}", "--yes")
    assert_clean_error(refused, "protected")
    assert Checkpoint.objects.get(pk=by_number[4].pk).state == "COMPLETED"  # all or nothing


def test_checkpoint_rm_glob(det, alice, default_storage):
    experiment, by_number = spec_example(alice)
    checkpoint = by_number[6]
    result = det("checkpoint", "rm", checkpoint.uuid, "--glob", "code/**", "--yes")
    assert result.returncode == 0, result.stderr
    checkpoint.refresh_from_db()
    assert checkpoint.state == "PARTIALLY_DELETED"
    assert sorted(checkpoint.resources) == ["metadata.json", "state-dict.pth"]
    directory = Path(default_storage.host_path) / str(checkpoint.uuid)
    assert sorted(p.name for p in directory.iterdir()) == ["metadata.json", "state-dict.pth"]
    ours = ckptweb_api(alice).get(f"/api/v1/checkpoints/{checkpoint.uuid}").json()
    assert ours["state"] == "PARTIALLY_DELETED" and ours["resources"] == checkpoint.resources

    listed = csv_rows(det("e", "lc", experiment.pk, "--csv").stdout)
    row = next(r for r in listed if r["UUID"] == str(checkpoint.uuid))
    assert row["State"] == "PARTIALLY_DELETED"
    assert row["Resources"].splitlines() == ["metadata.json", "state-dict.pth"]

    bad = det("checkpoint", "rm", checkpoint.uuid, "--glob", "../x", "--yes")
    assert_clean_error(bad, "'..'")


def test_bad_token_is_401_and_the_client_says_so(det, alice, default_storage):
    experiment, _ = spec_example(alice)
    result = det("e", "lc", experiment.pk, token="not-a-token")
    assert_clean_error(result, "Unauthenticated")
    response = ckptweb_api(None).get(
        f"/det-compat/api/v1/experiments/{experiment.pk}/checkpoints",
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )
    assert response.status_code == 401
    body = response.json()
    assert body["message"] and body["error"] == {"error": body["message"]}


def test_non_owner_gets_the_403_message(det, alice, bob, default_storage):
    from ckptweb.detcompat.auth import issue_token

    experiment, by_number = spec_example(alice)
    bob_token = issue_token(bob)
    reads = det("e", "lc", experiment.pk, user="bob", token=bob_token)
    assert reads.returncode == 0, reads.stderr  # any signed-in user reads
    policy = ["--save-experiment-best", 0, "--save-trial-best", 0, "--save-trial-latest", 0]
    result = det(
        "e", "set", "gc-policy", experiment.pk, *policy, "--yes", user="bob", token=bob_token
    )
    assert_clean_error(result, "Only the experiment's owner or staff may change it.")
    for args in (
        ("checkpoint", "delete", str(by_number[1].uuid), "--yes"),
        ("checkpoint", "rm", str(by_number[1].uuid), "--glob", "*", "--yes"),
    ):
        refused = det(*args, user="bob", token=bob_token)
        assert_clean_error(refused, "Only the experiment's owner or staff may change it.")
    assert experiment.checkpoints.filter(state="COMPLETED").count() == 10
