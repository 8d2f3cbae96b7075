"""Acceptance: the gc-preview API gives the spec table's checkpoints for all 11 policies.

Runs on whichever database the suite uses (SQLite by default, PostgreSQL in CI's second
pass), with ``spec-example`` built as ``manage.py load_demo`` builds it.
"""

import pytest

from tests.spec import SPEC_POLICIES


@pytest.fixture
def db_to_spec(spec_ids):
    """{database checkpoint id: spec checkpoint number} of the spec-example."""
    return {pk: number for number, pk in spec_ids.items()}


@pytest.mark.django_db
@pytest.mark.parametrize(("policy", "expected"), SPEC_POLICIES, ids=lambda v: str(v))
def test_gc_preview_matches_spec_table(alice_api, spec_example, db_to_spec, policy, expected):
    experiment_id = spec_example.pk
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
def test_gc_preview_defaults_to_current_policy(alice_api, spec_example, db_to_spec):
    experiment_id = spec_example.pk
    response = alice_api.get(f"/api/v1/experiments/{experiment_id}/gc-preview")
    assert response.status_code == 200
    # The default policy 0/1/1 keeps 10, 7, 5 (the table's row 0/1/1).
    assert [db_to_spec[pk] for pk in response.json()["retained_ids"]] == [10, 7, 5]


@pytest.mark.django_db
def test_gc_preview_rejects_bad_values_naming_the_field(alice_api, spec_example):
    experiment_id = spec_example.pk
    response = alice_api.get(
        f"/api/v1/experiments/{experiment_id}/gc-preview", {"save_trial_latest": "-2"}
    )
    assert response.status_code == 400
    assert "save_trial_latest" in response.json()["message"]


@pytest.mark.django_db
def test_gc_preview_needs_authentication(api, spec_example):
    experiment_id = spec_example.pk
    response = api.get(f"/api/v1/experiments/{experiment_id}/gc-preview")
    assert response.status_code == 401
