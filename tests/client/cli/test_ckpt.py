"""The real ``ckpt`` executable against a live test server."""

import csv
import io
from pathlib import Path

import pytest

from experiments.models import Checkpoint, Experiment
from tests.client.cli.helpers import assert_one_line_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_experiment_list(run_ckpt, populated):
    experiment, _ = populated
    result = run_ckpt("experiment", "list")
    assert result.returncode == 0, result.stderr
    header, _rule, row = result.stdout.splitlines()[:3]
    assert header.split()[:4] == ["ID", "Name", "Owner", "State"]
    assert row.split()[:4] == [str(experiment.pk), "cli-exp", "alice", "ACTIVE"]


def test_list_checkpoints_table(run_ckpt, populated):
    experiment, checkpoints = populated
    result = run_ckpt("experiment", "list-checkpoints", experiment.pk)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("  ")[0] == "Trial ID"
    for column in ("Steps", "State", "Validation Metric", "UUID", "Size"):
        assert column in lines[0]
    body = lines[2:]
    assert len(body) == 5
    # ordered by trial, then steps
    assert [line.split()[1] for line in body] == ["100", "200", "300", "100", "200"]
    assert str(checkpoints[1].uuid) in body[1]
    assert "0.5" in body[1]
    assert body[2].split()[3] == "-"  # no metric


def test_list_checkpoints_csv_and_best(run_ckpt, populated):
    experiment, checkpoints = populated
    result = run_ckpt("experiment", "list-checkpoints", experiment.pk, "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "trial_id",
        "steps",
        "state",
        "validation_metric",
        "uuid",
        "size_bytes",
    ]
    assert len(rows) == 5
    assert rows[0]["size_bytes"] == str(checkpoints[0].size_bytes)
    assert rows[2]["validation_metric"] == ""

    best = run_ckpt("experiment", "list-checkpoints", experiment.pk, "--best", "2", "--csv")
    assert best.returncode == 0, best.stderr
    rows = list(csv.DictReader(io.StringIO(best.stdout)))
    assert [r["uuid"] for r in rows] == [str(checkpoints[1].uuid), str(checkpoints[3].uuid)]


def test_describe(run_ckpt, populated):
    _, checkpoints = populated
    result = run_ckpt("checkpoint", "describe", checkpoints[1].uuid)
    assert result.returncode == 0, result.stderr
    assert str(checkpoints[1].uuid) in result.stdout
    assert "code/model_def.py  9" in result.stdout
    assert '"steps": 200' in result.stdout
    assert "Validation metric: 0.5" in result.stdout


def test_errors_are_one_line_with_status_1(run_ckpt, populated, live_server):
    assert_one_line_error(run_ckpt("checkpoint", "describe", "nope"), "Not found")
    assert_one_line_error(
        run_ckpt("experiment", "list", token_value="wrong"), "Invalid token", "CKPTWEB_TOKEN"
    )
    assert_one_line_error(run_ckpt("experiment", "list", url="http://127.0.0.1:9"), "cannot reach")
    assert_one_line_error(
        run_ckpt("experiment", "list-checkpoints", "999999"), "Experiment 999999 does not exist."
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["experiment"],
        ["experiment", "list-checkpoints"],
        ["experiment", "list-checkpoints", "x"],
        ["experiment", "set", "gc-policy", "1", "--save-trial-best", "-1"],
        ["checkpoint", "frobnicate"],
    ],
)
def test_usage_errors_exit_2(run_ckpt, args):
    result = run_ckpt(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_set_gc_policy_previews_confirms_and_follows(run_ckpt, populated, default_storage):
    experiment, checkpoints = populated
    args = [
        "experiment",
        "set",
        "gc-policy",
        experiment.pk,
        "--save-experiment-best",
        "1",
        "--save-trial-best",
        "0",
        "--save-trial-latest",
        "0",
    ]
    declined = run_ckpt(*args, input="n\n")
    assert declined.returncode == 1
    deleted_bytes = sum(c.size_bytes for c in checkpoints) - checkpoints[1].size_bytes
    assert "This policy will delete 4 checkpoints" in declined.stdout
    # Both trials are still running: the confirmation names the checkpoint each resumes from.
    assert "Warning: 2 running trial(s) would lose the latest checkpoint" in declined.stdout
    for latest in (checkpoints[2], checkpoints[4]):
        assert (
            f"trial {latest.trial_id}: checkpoint {latest.uuid} at step {latest.steps_completed}"
        ) in declined.stdout
    assert_one_line_error(declined, "aborted")
    assert not Checkpoint.objects.filter(state="DELETED").exists()

    result = run_ckpt(*args, input="y\n")
    assert result.returncode == 0, result.stderr
    assert "DELETE" in result.stdout and "keep" in result.stdout
    assert "SUCCEEDED" in result.stdout
    assert "Deleted 4 checkpoints" in result.stdout
    experiment.refresh_from_db()
    assert experiment.gc_policy.as_dict() == {
        "save_experiment_best": 1,
        "save_trial_best": 0,
        "save_trial_latest": 0,
    }
    states = {c.pk: c.state for c in Checkpoint.objects.all()}
    assert states[checkpoints[1].pk] == "COMPLETED"
    assert sorted(s for pk, s in states.items() if pk != checkpoints[1].pk) == ["DELETED"] * 4
    root = default_storage.host_path
    for c in checkpoints:
        exists = (Path(root) / str(c.uuid)).exists()
        assert exists == (c.pk == checkpoints[1].pk)
    assert deleted_bytes > 0


def test_set_gc_policy_yes_keeps_unset_values(run_ckpt, populated):
    experiment, _ = populated
    result = run_ckpt(
        "experiment", "set", "gc-policy", experiment.pk, "--save-trial-latest", "5", "--yes"
    )
    assert result.returncode == 0, result.stderr
    assert "This policy will delete 0 checkpoints (0 B)" in result.stdout
    experiment = Experiment.objects.get(pk=experiment.pk)
    assert experiment.gc_policy.as_dict() == {
        "save_experiment_best": 0,
        "save_trial_best": 1,
        "save_trial_latest": 5,
    }


def test_checkpoint_delete(run_ckpt, populated, default_storage):
    _, checkpoints = populated
    target = checkpoints[0]
    result = run_ckpt("checkpoint", "delete", target.uuid, "--yes")
    assert result.returncode == 0, result.stderr
    target.refresh_from_db()
    assert target.state == "DELETED"
    assert not (Path(default_storage.host_path) / str(target.uuid)).exists()

    protected = checkpoints[1]
    Checkpoint.objects.filter(pk=protected.pk).update(protected=True)
    assert_one_line_error(run_ckpt("checkpoint", "delete", protected.uuid, "--yes"), "protected")
    declined = run_ckpt("checkpoint", "delete", checkpoints[2].uuid)  # EOF on stdin = no
    assert_one_line_error(declined, "aborted")
    checkpoints[2].refresh_from_db()
    assert checkpoints[2].state == "COMPLETED"


def test_storage_commands_are_wired_and_staff_only(run_ckpt, default_storage):
    """``ckpt storage scan`` reaches the server; alice is not staff, so it is refused."""
    result = run_ckpt("storage", "scan", default_storage.name)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "staff" in result.stderr.lower() or "permission" in result.stderr.lower()
    usage = run_ckpt("storage", "delete-orphans")
    assert usage.returncode == 2
