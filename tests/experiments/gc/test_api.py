"""GET experiments/{id}/gc-preview, PUT experiments/{id}/gc-policy, GET gc-runs."""

import pytest

from experiments.gc import runs
from experiments.models import GCRun
from tests.spec import SPEC_POLICIES as SPEC_TABLE

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("policy", "saved"), SPEC_TABLE)
def test_preview_matches_the_spec_table(alice_api, spec_example, spec_ids, policy, saved):
    experiment = spec_example
    query = "save_experiment_best={}&save_trial_best={}&save_trial_latest={}".format(*policy)
    response = alice_api.get(f"/api/v1/experiments/{experiment.pk}/gc-preview?{query}")
    assert response.status_code == 200
    body = response.json()
    assert body["retained_ids"] == [spec_ids[n] for n in saved]
    deleted = sorted(set(range(1, 11)) - set(saved), reverse=True)
    assert body["deleted_ids"] == [spec_ids[n] for n in deleted]
    assert body["metric_name"] == "validation_loss"
    assert body["reclaimed_bytes"] == sum(
        c["size_bytes"] for c in body["checkpoints"] if not c["keep"]
    )
    row_keys = "id uuid trial_id steps_completed validation_metric size_bytes keep reason"
    assert set(body["checkpoints"][0]) == set(row_keys.split())


def test_missing_params_default_to_the_current_policy(alice_api, spec_example, spec_ids):
    experiment = spec_example
    experiment.save_experiment_best = 2
    experiment.save_trial_best = 0
    experiment.save_trial_latest = 0
    experiment.save()
    url = f"/api/v1/experiments/{experiment.pk}/gc-preview"
    assert alice_api.get(url).json()["retained_ids"] == [spec_ids[8], spec_ids[7]]
    # only save_trial_latest given: 2/0/1
    body = alice_api.get(url + "?save_trial_latest=1").json()
    assert body["retained_ids"] == [spec_ids[10], spec_ids[8], spec_ids[7], spec_ids[5]]
    assert body["policy"] == {
        "save_experiment_best": 2,
        "save_trial_best": 0,
        "save_trial_latest": 1,
    }


@pytest.mark.parametrize("value", ["-1", "1.5", "x", "true", "99999999999999"])
@pytest.mark.parametrize("field", ["save_experiment_best", "save_trial_best", "save_trial_latest"])
def test_bad_preview_values_are_400_naming_the_field(alice_api, experiment, field, value):
    response = alice_api.get(f"/api/v1/experiments/{experiment.pk}/gc-preview?{field}={value}")
    assert response.status_code == 400
    assert field in response.json()
    assert field in response.json()["message"]


def test_preview_pages_checkpoints_and_keeps_the_lists_whole(alice_api, spec_example, spec_ids):
    experiment = spec_example
    url = f"/api/v1/experiments/{experiment.pk}/gc-preview?save_trial_latest=1"
    whole = alice_api.get(url).json()
    assert whole["count"] == 10 and len(whole["checkpoints"]) == 10
    body = alice_api.get(url + "&page=2&page_size=3").json()
    assert body["count"] == 10
    assert [c["id"] for c in body["checkpoints"]] == sorted(spec_ids.values(), reverse=True)[3:6]
    for key in ("retained_ids", "deleted_ids", "reclaimed_bytes", "metric_name", "policy"):
        assert body[key] == whole[key]
    assert alice_api.get(url + "&page=5&page_size=3").json()["checkpoints"] == []


@pytest.mark.parametrize(
    ("query", "field", "limit"),
    [
        ("page_size=1001", "page_size", "1000"),
        ("page_size=0", "page_size", "1000"),
        ("page_size=x", "page_size", "1000"),
        ("page=0", "page", "1 to"),
        ("page=-1", "page", "1 to"),
        ("page=99999999999999999999", "page", "1 to"),
    ],
)
def test_bad_preview_pages_are_400_naming_the_field_and_limit(
    alice_api, experiment, query, field, limit
):
    response = alice_api.get(f"/api/v1/experiments/{experiment.pk}/gc-preview?{query}")
    assert response.status_code == 400
    body = response.json()
    assert field in body and limit in body[field][0]
    assert field in body["message"]


def test_put_policy_saves_and_starts_a_run(alice_api, experiment):
    body = {"save_experiment_best": 3, "save_trial_best": 0, "save_trial_latest": 2}
    response = alice_api.put(f"/api/v1/experiments/{experiment.pk}/gc-policy", body, format="json")
    assert response.status_code == 202, response.json()
    run = response.json()["gc_run"]
    assert run["policy"] == body
    assert run["state"] == "PENDING"
    run_keys = "id experiment_id state policy total deleted failed reclaimed_bytes errors"
    assert set(run) >= {*run_keys.split(), "started_at", "finished_at"}
    experiment.refresh_from_db()
    assert experiment.gc_policy.as_dict() == body
    assert alice_api.get(f"/api/v1/gc-runs/{run['id']}").json()["policy"] == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"save_experiment_best": -1, "save_trial_best": 0, "save_trial_latest": 0},
            "save_experiment_best",
        ),
        (
            {"save_experiment_best": 0, "save_trial_best": "x", "save_trial_latest": 0},
            "save_trial_best",
        ),
        ({"save_experiment_best": 0, "save_trial_best": 0}, "save_trial_latest"),
    ],
)
def test_put_policy_rejects_bad_values(alice_api, experiment, body, field):
    response = alice_api.put(f"/api/v1/experiments/{experiment.pk}/gc-policy", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert not GCRun.objects.exists()


@pytest.mark.parametrize("size", [2, 20])
def test_gc_run_list_query_count(alice_api, experiment, size, django_assert_num_queries):
    for _ in range(size):
        runs.start_gc_run(experiment, "SWEEP")
    with django_assert_num_queries(2):
        response = alice_api.get(f"/api/v1/gc-runs?experiment={experiment.pk}")
    assert response.json()["count"] == size


def test_gc_run_shows_errors_and_finish(alice_api, experiment):
    run = runs.start_gc_run(experiment, "SWEEP")
    GCRun.objects.filter(pk=run.pk).update(
        state="FAILED", errors=[{"checkpoint": "abc", "error": "denied"}], failed=1
    )
    body = alice_api.get(f"/api/v1/gc-runs/{run.pk}").json()
    assert body["errors"] == [{"checkpoint": "abc", "error": "denied"}]
    assert body["state"] == "FAILED"
