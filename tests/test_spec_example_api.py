"""Acceptance: the gc-preview API gives the spec table's checkpoints for all 11 policies.

Runs on whichever database the suite uses (SQLite by default, PostgreSQL in CI's second
pass), with ``spec-example`` built as ``manage.py load_demo`` builds it.
"""

import pytest

from experiments.demo import build_spec_example
from experiments.models import Checkpoint, Trial
from tests.spec import SPEC_POLICIES


@pytest.fixture
def spec_ids(alice, default_storage):
    """(experiment id, {db checkpoint id: spec checkpoint id}) of the spec-example."""
    experiment = build_spec_example(alice)
    trials = list(
        Trial.objects.filter(experiment=experiment).order_by("id").values_list("id", flat=True)
    )
    db_to_spec = {}
    for pk, trial_id, steps in Checkpoint.objects.filter(experiment=experiment).values_list(
        "id", "trial_id", "steps_completed"
    ):
        db_to_spec[pk] = trials.index(trial_id) * 5 + steps // 100
    return experiment.id, db_to_spec


@pytest.mark.django_db
@pytest.mark.parametrize(("policy", "expected"), SPEC_POLICIES, ids=lambda v: str(v))
def test_gc_preview_matches_spec_table(alice_api, spec_ids, policy, expected):
    experiment_id, db_to_spec = spec_ids
    query = dict(
        zip(("save_experiment_best", "save_trial_best", "save_trial_latest"), policy, strict=True)
    )
    response = alice_api.get(f"/api/v1/experiments/{experiment_id}/gc-preview", query)
    assert response.status_code == 200, response.content
    body = response.json()
    assert [db_to_spec[pk] for pk in body["retained_ids"]] == expected
    assert sorted(db_to_spec[pk] for pk in body["deleted_ids"]) == sorted(
        set(range(1, 11)) - set(expected)
    )
    assert body["deleted_ids"] == sorted(body["deleted_ids"], reverse=True)
    assert body["metric_name"] == "validation_loss"
    keep = {db_to_spec[c["id"]] for c in body["checkpoints"] if c["keep"]}
    assert keep == set(expected)


@pytest.mark.django_db
def test_gc_preview_defaults_to_current_policy(alice_api, spec_ids):
    experiment_id, db_to_spec = spec_ids
    response = alice_api.get(f"/api/v1/experiments/{experiment_id}/gc-preview")
    assert response.status_code == 200
    # The default policy 0/1/1 keeps 10, 7, 5 (the table's row 0/1/1).
    assert [db_to_spec[pk] for pk in response.json()["retained_ids"]] == [10, 7, 5]


@pytest.mark.django_db
def test_gc_preview_rejects_bad_values_naming_the_field(alice_api, spec_ids):
    experiment_id, _ = spec_ids
    response = alice_api.get(
        f"/api/v1/experiments/{experiment_id}/gc-preview", {"save_trial_latest": "-2"}
    )
    assert response.status_code == 400
    assert "save_trial_latest" in response.json()["message"]


@pytest.mark.django_db
def test_gc_preview_needs_authentication(api, spec_ids):
    experiment_id, _ = spec_ids
    response = api.get(f"/api/v1/experiments/{experiment_id}/gc-preview")
    assert response.status_code == 401
