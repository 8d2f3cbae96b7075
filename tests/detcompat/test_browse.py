"""Browsing with the real ``det`` CLI and SDK (determined 0.38.1) against /det-compat/:
experiments, trials, their checkpoints sorted by any metric, master info and users,
compared with ckptweb's own API and database."""

from __future__ import annotations

import json

import pytest

from experiments import services
from experiments.models import Checkpoint
from tests.detcompat.helpers import (
    assert_clean_error,
    ckptweb_api,
    ckptweb_download,
    csv_rows,
    tree,
)
from tests.factories import make_experiment
from tests.spec import spec_example

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def example(alice, default_storage):
    """The spec's example (alice's) with a second metric, ``epoch``, at every validated
    step: reported again at the same step, so the latest report there carries both."""
    experiment, by_number = spec_example(alice)
    for number, checkpoint in by_number.items():
        if checkpoint.validation_metric is not None:
            services.report_validation(
                checkpoint.trial,
                checkpoint.steps_completed,
                {"validation_loss": checkpoint.validation_metric, "epoch": 11 - number},
            )
    return experiment, by_number


def last_json(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_experiment_list_shows_yours_unarchived_and_all_with_all(
    det, alice, bob, example, default_storage
):
    experiment, _ = example
    archived = make_experiment(alice, default_storage, name="old")
    services.update_experiment(archived, archived=True)
    theirs = make_experiment(bob, default_storage, name="bobs")

    mine = det("experiment", "list", "--csv")
    assert mine.returncode == 0, mine.stderr
    rows = csv_rows(mine.stdout)
    assert [int(r["ID"]) for r in rows] == [experiment.pk]
    assert rows[0]["Owner"] == "alice" and rows[0]["Name"] == experiment.name
    assert rows[0]["State"] == experiment.state
    ours = ckptweb_api(alice).get("/api/v1/experiments?owner=me").json()["results"]
    assert [e["id"] for e in ours] == [experiment.pk]

    everything = det("experiment", "list", "--all", "--csv")
    assert everything.returncode == 0, everything.stderr
    rows = {int(r["ID"]): r for r in csv_rows(everything.stdout)}
    assert set(rows) == {experiment.pk, archived.pk, theirs.pk}
    assert rows[archived.pk]["Archived"] == "True"
    assert rows[theirs.pk]["Archived"] == "False"
    ours = ckptweb_api(alice).get("/api/v1/experiments?archived=all").json()["results"]
    assert {e["id"] for e in ours} == set(rows)


def test_experiment_list_trials_and_describe(det, alice, example):
    experiment, by_number = example
    trials = list(experiment.trials.order_by("id"))
    listed = det("experiment", "list-trials", experiment.pk, "--csv")
    assert listed.returncode == 0, listed.stderr
    rows = csv_rows(listed.stdout)
    assert [int(r["Trial ID"]) for r in rows] == [t.pk for t in trials]
    assert {r["State"] for r in rows} == {t.state for t in trials}
    ours = ckptweb_api(alice).get(f"/api/v1/experiments/{experiment.pk}/trials").json()
    assert [t["id"] for t in ours["results"]] == [int(r["Trial ID"]) for r in rows]

    described = det("experiment", "describe", experiment.pk, "--json")
    assert described.returncode == 0, described.stderr
    body = json.loads(described.stdout)
    assert body[0]["experiment"]["id"] == experiment.pk
    assert body[0]["experiment"]["name"] == experiment.name
    table = det("experiment", "describe", experiment.pk, "--metrics")
    assert table.returncode == 0, table.stderr
    assert "Trials:" in table.stdout and "Workloads:" in table.stdout
    assert "Validation Metric: epoch" in table.stdout
    assert "Validation Metric: validation_loss" in table.stdout
    # One workload row per (trial, step) of a checkpoint: the example's ten.
    workloads = table.stdout.split("Workloads:")[1]
    rows = [line for line in workloads.splitlines() if line.strip()[:1].isdigit()]
    steps = sorted((int(r.split("|")[0]), int(r.split("|")[1])) for r in rows)
    assert steps == sorted((c.trial_id, c.steps_completed) for c in by_number.values())


def test_trial_describe_lists_validations_and_checkpoints(det, alice, example):
    experiment, by_number = example
    trial = by_number[7].trial
    result = det("trial", "describe", trial.pk, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["trial"]["id"] == trial.pk
    assert body["trial"]["experimentId"] == experiment.pk
    assert body["trial"]["hparams"] == trial.hparams
    assert body["trial"]["checkpointCount"] == trial.checkpoints.count()
    # The trial's best: checkpoint 7 (validation_loss 0.2).
    assert body["trial"]["bestCheckpoint"]["uuid"] == str(by_number[7].uuid)
    assert body["trial"]["searcherMetricValue"] == 0.2
    uuids = [w["checkpoint"]["uuid"] for w in body["workloads"] if w.get("checkpoint")]
    assert sorted(uuids) == sorted(str(c.uuid) for c in trial.checkpoints.all())
    validated = [w["validation"] for w in body["workloads"] if w.get("validation")]
    assert [v["totalBatches"] for v in validated] == [200, 300]
    table = det("trial", "describe", trial.pk)
    assert table.returncode == 0, table.stderr
    assert "Workloads:" in table.stdout


def test_trial_download_best_and_latest(det, alice, example, tmp_path):
    experiment, by_number = example
    trial = by_number[7].trial
    best = det("trial", "download", trial.pk, "--best", "-o", tmp_path / "best", "-q")
    assert best.returncode == 0, best.stderr
    # Determined's CLI takes the last of the sorted list: without --sort-by it is the
    # searcher-metric list best first, so the last is the worst validated, checkpoint 8.
    assert tree(tmp_path / "best") == ckptweb_download(alice, by_number[8], tmp_path / "c8")
    latest = det("trial", "download", trial.pk, "--latest", "-o", tmp_path / "latest", "-q")
    assert latest.returncode == 0, latest.stderr
    # --latest sorts by batches descending and takes the last: the trial's first (6).
    assert tree(tmp_path / "latest") == ckptweb_download(alice, by_number[6], tmp_path / "c6")


def test_sdk_browsing(det_python, master, alice, example):
    experiment, by_number = example
    trial = by_number[7].trial
    out = last_json(
        det_python(
            f"""
            import json
            from determined.experimental import client
            client.login({master!r}, "alice", "alice-pass-123")
            exps = client.list_experiments()
            exp = client.get_experiment({experiment.pk})
            trials = exp.list_trials()
            trial = client.get_trial({trial.pk})
            ckpts = trial.list_checkpoints()
            top = trial.top_checkpoint()
            print(json.dumps({{
                "exps": [e.id for e in exps],
                "trials": [t.id for t in trials],
                "hparams": trial.hparams,
                "ckpts": [c.uuid for c in ckpts],
                "top": top.uuid,
            }}))
            """
        )
    )
    assert out["exps"] == [experiment.pk]
    assert out["trials"] == list(experiment.trials.order_by("id").values_list("id", flat=True))
    assert out["hparams"] == trial.hparams
    # Validated checkpoints of the trial, best first: 7 (0.2), 8 (0.3).
    assert out["ckpts"] == [str(by_number[7].uuid), str(by_number[8].uuid)]
    assert out["top"] == str(by_number[7].uuid)


def test_sorting_by_any_metric_nulls_last(det_python, det, master, alice, example, tmp_path):
    """``epoch`` was reported at the validated steps only: 8 (3), 7 (4), 5 (6), 4 (7),
    3 (8); the other checkpoints have none and come last in either order."""
    experiment, by_number = example
    trial = by_number[7].trial
    out = last_json(
        det_python(
            f"""
            import json
            from determined.experimental import client
            client.login({master!r}, "alice", "alice-pass-123")
            exp = client.get_experiment({experiment.pk})
            asc = exp.list_checkpoints(sort_by="epoch", order_by=client.OrderBy.ASC)
            desc = exp.list_checkpoints(sort_by="epoch", order_by=client.OrderBy.DESC)
            trial = client.get_trial({trial.pk})
            top_small = trial.top_checkpoint(sort_by="epoch", smaller_is_better=True)
            top_big = trial.top_checkpoint(sort_by="epoch", smaller_is_better=False)
            print(json.dumps({{
                "asc": [c.uuid for c in asc],
                "desc": [c.uuid for c in desc],
                "top_small": top_small.uuid,
                "top_big": top_big.uuid,
            }}))
            """
        )
    )
    uuid = {n: str(c.uuid) for n, c in by_number.items()}
    completed = set(
        Checkpoint.objects.filter(experiment=experiment, state="COMPLETED").values_list(
            "uuid", flat=True
        )
    )
    unmeasured = [uuid[n] for n in (1, 2, 6, 9, 10) if by_number[n].uuid in completed]
    assert out["asc"][:5] == [uuid[n] for n in (8, 7, 5, 4, 3)]
    assert out["desc"][:5] == [uuid[n] for n in (3, 4, 5, 7, 8)]
    assert sorted(out["asc"][5:]) == sorted(unmeasured) == sorted(out["desc"][5:])
    assert out["top_small"] == uuid[8]
    assert out["top_big"] == uuid[7]

    # det experiment download --sort-by epoch --smaller-is-better false --top-n 1: checkpoint 3.
    result = det(
        "experiment",
        "download",
        experiment.pk,
        "--sort-by",
        "epoch",
        "--smaller-is-better",
        "false",
        "--top-n",
        "1",
        "-o",
        tmp_path / "top",
    )
    assert result.returncode == 0, result.stderr
    downloaded = [p for p in (tmp_path / "top").iterdir()]
    assert [p.name for p in downloaded] == [uuid[3]]
    assert tree(downloaded[0]) == ckptweb_download(alice, by_number[3], tmp_path / "c3")


def usernames(table: str) -> list[str]:
    """The Username column of ``det user list``'s table."""
    lines = [line for line in table.splitlines() if "|" in line]
    column = [cell.strip() for cell in lines[0].split("|")].index("Username")
    return sorted(line.split("|")[column].strip() for line in lines[1:])


def test_master_info_and_user_list(det, alice, bob, staff):
    info = det("master", "info", "--json")
    assert info.returncode == 0, info.stderr
    body = json.loads(info.stdout)
    assert body["version"] == "0.38.1"
    assert "password" not in info.stdout.lower() and "secret" not in info.stdout.lower()
    users = det("user", "list")
    assert users.returncode == 0, users.stderr
    assert usernames(users.stdout) == ["alice"]

    from ckptweb.detcompat.auth import issue_token

    as_staff = det("user", "list", user="staff", token=issue_token(staff))
    assert as_staff.returncode == 0, as_staff.stderr
    assert usernames(as_staff.stdout) == ["alice", "bob", "staff"]
    assert "pbkdf2" not in as_staff.stdout and "sha" not in as_staff.stdout.lower()


def test_unknown_ids_stay_404_and_unserved_routes_are_501(det, alice, example):
    missing = det("trial", "describe", "987654")
    assert_clean_error(missing, "trial 987654 not found")
    unserved = det("experiment", "pause", example[0].pk)
    assert_clean_error(unserved, "ckptweb does not implement", "/pause")


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/det-compat/api/v1/projects/1"),
        ("POST", "/det-compat/api/v1/experiments/1/pause"),
        ("DELETE", "/det-compat/api/v1/workspaces/1"),
        ("PUT", "/det-compat/some/thing/else"),
    ],
)
def test_every_unserved_route_is_a_json_501_naming_it(client, method, path):
    """With or without a token: the client prints why (never an HTML page or an empty 404)."""
    response = client.generic(method, path)
    assert response.status_code == 501
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "error"} and body["error"] == {"error": body["message"]}
    assert body["message"].startswith(f"{method} {path}: ckptweb does not implement")


def test_unknown_ids_of_served_routes_stay_json_404(client, alice):
    from ckptweb.detcompat.auth import issue_token

    auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(alice)}"}
    for path in (
        "/det-compat/api/v1/experiments/424242/trials",
        "/det-compat/api/v1/trials/424242",
        "/det-compat/api/v1/trials/nope/workloads",
        "/det-compat/api/v1/trials/424242/checkpoints",
    ):
        response = client.get(path, **auth)
        assert response.status_code == 404, path
        assert "not found" in response.json()["error"]["error"]


def test_lists_page_on(det, alice, default_storage):
    """``det experiment list --limit 2``: the client reads page after page, all of them."""
    made = [make_experiment(alice, default_storage, name=f"e{i}").pk for i in range(5)]
    result = det("experiment", "list", "--limit", "2", "--csv")
    assert result.returncode == 0, result.stderr
    assert [int(r["ID"]) for r in csv_rows(result.stdout)] == sorted(made)
    first = det("experiment", "list", "--limit", "2", "--pages", "1", "--csv")
    assert first.returncode == 0, first.stderr
    assert [int(r["ID"]) for r in csv_rows(first.stdout)] == sorted(made)[:2]
