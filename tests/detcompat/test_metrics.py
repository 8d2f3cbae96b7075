"""Determined's SDK reads ckptweb's metrics groups: ``trial.iter_metrics(group)``,
``iter_trials_metrics``, ``stream_trials_validation_metrics`` and ``checkpoint.get_metrics()``,
compared with ckptweb's own API."""

from __future__ import annotations

import json

import pytest

from experiments import batch, services
from tests.detcompat.helpers import ckptweb_api
from tests.factories import add_checkpoints

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reported(alice, experiment):
    """Two trials: validations, a training group (one step twice) and a custom group."""
    first = services.create_trial(experiment, {"lr": 0.1})
    second = services.create_trial(experiment, {"lr": 0.2})
    for trial, scale in ((first, 1.0), (second, 2.0)):
        batch.report_metrics(
            trial,
            "training",
            [{"steps_completed": s, "metrics": {"loss": scale / s}} for s in (1, 2, 3)],
        )
        services.report_validation(trial, 3, {"loss": scale / 10, "acc": 0.5})
    batch.report_metrics(first, "training", [{"steps_completed": 3, "metrics": {"loss": 0.01}}])
    batch.report_metrics(first, "probe", [{"steps_completed": 2, "metrics": {"x": 7}}])
    (checkpoint,) = add_checkpoints(first, [(3, None)])
    return first, second, checkpoint


def sdk(det_python, master, code: str) -> object:
    result = det_python(
        f"""
        import json
        from determined.experimental import client
        client.login({master!r}, "alice", "alice-pass-123")
        d = client._determined
        def rows(reports):
            return [[r.trial_id, r.steps_completed, r.group, r.metrics] for r in reports]
        {code}
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_sdk_reads_every_group(det_python, master, alice, reported):
    first, second, checkpoint = reported
    out = sdk(
        det_python,
        master,
        f"""
        trial = client.get_trial({first.pk})
        print(json.dumps({{
            "training": rows(trial.iter_metrics("training")),
            "probe": rows(trial.iter_metrics("probe")),
            "validation": rows(trial.iter_metrics("validation")),
            "both": rows(d.iter_trials_metrics([{first.pk}, {second.pk}], group="training")),
            "legacy": rows(d.stream_trials_validation_metrics([{first.pk}, {second.pk}])),
            "checkpoint": rows(client.get_checkpoint("{checkpoint.uuid}").get_metrics()),
        }}))
        """,
    )
    ours = ckptweb_api(alice).get(f"/api/v1/trials/{first.pk}/metrics?group=training").json()
    assert out["training"] == [
        [first.pk, r["steps_completed"], "training", r["metrics"]] for r in ours["results"]
    ]
    assert [r[1] for r in out["training"]] == [1, 2, 3, 3]  # both reports of step 3, in order
    assert out["probe"] == [[first.pk, 2, "probe", {"x": 7}]]
    assert out["validation"] == [[first.pk, 3, "validation", {"loss": 0.1, "acc": 0.5}]]
    assert [(r[0], r[1]) for r in out["both"]] == [(first.pk, s) for s in (1, 2, 3, 3)] + [
        (second.pk, s) for s in (1, 2, 3)
    ]
    assert out["legacy"] == [
        [first.pk, 3, "validation", {"loss": 0.1, "acc": 0.5}],
        [second.pk, 3, "validation", {"loss": 0.2, "acc": 0.5}],
    ]
    # No inference trial named the checkpoint as its source: Determined's empty answer.
    assert out["checkpoint"] == []


def test_many_reports_stream_in_chunks(det_python, master, alice, trial):
    for start in (1, 601):  # two batches
        items = [
            {"steps_completed": s, "metrics": {"loss": 1.0}} for s in range(start, start + 600)
        ]
        batch.report_metrics(trial, "training", items)
    out = sdk(
        det_python,
        master,
        f"""
        steps = [r.steps_completed for r in client.get_trial({trial.pk}).iter_metrics("training")]
        print(json.dumps(steps))
        """,
    )
    assert out == list(range(1, 1201))


def test_bad_reads_are_named_errors(det_python, master, alice, trial):
    out = sdk(
        det_python,
        master,
        f"""
        errors = []
        for ids, group in (([{trial.pk}], "a b"), ([999999], "training")):
            try:
                list(d.iter_trials_metrics(ids, group=group))
            except Exception as exc:
                errors.append(str(exc))
        print(json.dumps(errors))
        """,
    )
    assert len(out) == 2
    assert "group" in out[0] and "trial 999999 not found" in out[1], out
