"""POST trials/{id}/checkpoints:batch and validations:batch (docs/architecture.md, "Scale
contract")."""

import uuid

import pytest

from experiments import services
from experiments.models import Checkpoint, Validation
from tests.experiments.ingest.statements import statements

pytestmark = pytest.mark.django_db


def checkpoints_url(trial):
    return f"/api/v1/trials/{trial.pk}/checkpoints:batch"


def validations_url(trial):
    return f"/api/v1/trials/{trial.pk}/validations:batch"


def post(client, url, items):
    return client.post(url, {"items": items}, format="json")


def report(steps, **extra):
    return {"steps_completed": steps, "resources": {"model.pt": steps, "meta.json": 1}, **extra}


def test_it_stores_1000_checkpoints_in_order(alice_api, trial):
    items = [report(i) for i in range(1000)]
    response, seen = statements(alice_api, checkpoints_url(trial), {"items": items})
    assert response.status_code == 201, response.json()
    created = response.json()["items"]
    assert len(created) == 1000
    assert set(created[0]) == {"id", "uuid", "state"}
    stored = Checkpoint.objects.filter(trial=trial).order_by("id")
    assert [c.steps_completed for c in stored] == list(range(1000))
    assert [str(c.uuid) for c in stored] == [c["uuid"] for c in created]
    assert stored[5].size_bytes == 6 and stored[5].experiment_id == trial.experiment_id
    # Not one per item: the INSERTs (one on PostgreSQL; SQLite's parameter limit splits
    # them in 15 or fewer) and a constant few (trial, uuid check, validations, summary).
    inserts = [word for word in seen if word == "INSERT"]
    assert inserts and len(inserts) <= 15 and len(seen) - len(inserts) <= 6, seen


def test_it_refuses_1001_naming_the_limit(alice_api, trial):
    response = post(alice_api, checkpoints_url(trial), [report(i) for i in range(1001)])
    assert response.status_code == 400
    assert "1000" in response.json()["message"]
    assert response.json()["message"].startswith("items")
    assert not Checkpoint.objects.exists()


def test_an_empty_batch_is_refused(alice_api, trial):
    response = post(alice_api, checkpoints_url(trial), [])
    assert response.status_code == 400
    assert "items" in response.json()["message"]


def test_errors_name_every_bad_item_by_index(alice_api, trial):
    items = [report(1), {"steps_completed": -1}, report(3), {"steps_completed": 4, "uuid": "x"}]
    response = post(alice_api, checkpoints_url(trial), items)
    assert response.status_code == 400
    body = response.json()
    assert set(body["items"]) == {"1", "3"}
    assert "steps_completed" in body["items"]["1"]
    assert "uuid" in body["items"]["3"]
    assert body["message"].startswith("items[1].steps_completed: ")
    assert not Checkpoint.objects.exists()


def test_rule_errors_name_the_item_and_store_nothing(alice_api, trial):
    items = [report(1), report(2, resources={"../escape": 1}), report(3)]
    response = post(alice_api, checkpoints_url(trial), items)
    assert response.status_code == 400
    body = response.json()
    assert list(body["items"]) == ["1"]
    assert body["message"].startswith("items[1].resources: ")
    assert not Checkpoint.objects.exists()


def test_uuids_taken_or_repeated_are_refused(alice_api, trial):
    taken = services.report_checkpoint(trial, 1).uuid
    fresh = str(uuid.uuid4())
    items = [report(2, uuid=fresh), report(3, uuid=str(taken)), report(4, uuid=fresh)]
    response = post(alice_api, checkpoints_url(trial), items)
    assert response.status_code == 400
    body = response.json()
    assert set(body["items"]) == {"1", "2"}
    assert "already exists" in body["items"]["1"]["uuid"][0]
    assert "items[0]" in body["items"]["2"]["uuid"][0]
    assert Checkpoint.objects.count() == 1


def test_checkpoints_get_metrics_of_earlier_validations(alice_api, trial):
    services.report_validation(trial, 100, {"loss": 0.9})
    services.report_validation(trial, 100, {"loss": 0.5})  # the latest wins
    services.report_validation(trial, 200, {"acc": 1.0})  # no searcher metric
    response = post(alice_api, checkpoints_url(trial), [report(100), report(200), report(300)])
    assert response.status_code == 201, response.json()
    metrics = dict(Checkpoint.objects.values_list("steps_completed", "validation_metric"))
    assert metrics == {100: 0.5, 200: None, 300: None}


def test_validations_give_metrics_to_earlier_checkpoints(alice_api, trial):
    post(alice_api, checkpoints_url(trial), [report(100), report(200), report(300)])
    items = [
        {"steps_completed": 100, "metrics": {"loss": 0.9}},
        {"steps_completed": 200, "metrics": {"loss": 0.7, "acc": 1}},
        {"steps_completed": 100, "metrics": {"loss": 0.4}},  # later in the batch: wins
    ]
    response = post(alice_api, validations_url(trial), items)
    assert response.status_code == 201, response.json()
    created = response.json()["items"]
    assert [v["steps_completed"] for v in created] == [100, 200, 100]
    assert created[1]["metrics"] == {"loss": 0.7, "acc": 1}
    assert Validation.objects.count() == 3
    metrics = dict(Checkpoint.objects.values_list("steps_completed", "validation_metric"))
    assert metrics == {100: 0.4, 200: 0.7, 300: None}
    best = Checkpoint.objects.get(steps_completed=100)
    detail = alice_api.get(f"/api/v1/checkpoints/{best.uuid}")
    assert detail.json()["validation_metric"] == 0.4


def test_1000_validations_in_a_fixed_number_of_queries(alice_api, trial):
    post(alice_api, checkpoints_url(trial), [report(i) for i in range(0, 1000, 10)])
    items = [{"steps_completed": i, "metrics": {"loss": i / 1000}} for i in range(1000)]
    response, seen = statements(alice_api, validations_url(trial), {"items": items})
    assert response.status_code == 201, response.json()
    assert 0 < len(seen) < 20, seen
    assert Checkpoint.objects.get(steps_completed=500).validation_metric == 0.5


def test_a_bad_validation_stores_nothing(alice_api, trial):
    post(alice_api, checkpoints_url(trial), [report(100)])
    items = [
        {"steps_completed": 100, "metrics": {"loss": 0.5}},
        {"steps_completed": 200, "metrics": {}},
    ]
    response = post(alice_api, validations_url(trial), items)
    assert response.status_code == 400
    assert response.json()["message"].startswith("items[1].metrics: ")
    assert not Validation.objects.exists()
    assert Checkpoint.objects.get().validation_metric is None


def test_others_may_not_report(bob_api, trial):
    for url, item in (
        (checkpoints_url(trial), report(1)),
        (validations_url(trial), {"steps_completed": 1, "metrics": {"loss": 1}}),
    ):
        assert post(bob_api, url, [item]).status_code == 403
    assert not Checkpoint.objects.exists() and not Validation.objects.exists()


def test_staff_may_report(staff_api, trial):
    assert post(staff_api, checkpoints_url(trial), [report(1)]).status_code == 201


def test_signed_out_is_refused(api, trial):
    assert post(api, checkpoints_url(trial), [report(1)]).status_code in (401, 403)


def test_nothing_is_reported_into_a_deleting_experiment(alice_api, experiment, trial):
    experiment.state = "DELETING"
    experiment.save()
    for url, item in (
        (checkpoints_url(trial), report(1)),
        (validations_url(trial), {"steps_completed": 1, "metrics": {"loss": 1}}),
    ):
        response = post(alice_api, url, [item])
        assert response.status_code == 409
        assert "deleted" in response.json()["message"]
    assert not Checkpoint.objects.exists() and not Validation.objects.exists()


def test_unknown_trial_is_404(alice_api, default_storage):
    response = alice_api.post("/api/v1/trials/999/checkpoints:batch", {"items": []}, format="json")
    assert response.status_code == 404


def test_items_must_be_a_list(alice_api, trial):
    response = alice_api.post(checkpoints_url(trial), {"items": {"a": 1}}, format="json")
    assert response.status_code == 400
    assert response.json()["message"].startswith("items")


def test_a_uuid_taken_meanwhile_is_named_not_a_500(alice_api, trial, monkeypatch):
    from experiments import batch

    taken = services.report_checkpoint(trial, 1).uuid
    checks = iter([[], None])  # the first check misses it, as if reported concurrently
    real = Checkpoint.objects.filter

    def filter_missing_once(*args, **kwargs):
        if "uuid__in" in kwargs and next(checks, None) == []:
            return Checkpoint.objects.none()
        return real(*args, **kwargs)

    monkeypatch.setattr(batch.Checkpoint.objects, "filter", filter_missing_once)
    response = post(alice_api, checkpoints_url(trial), [report(2), report(3, uuid=str(taken))])
    assert response.status_code == 400
    assert "already exists" in response.json()["items"]["1"]["uuid"][0]
    assert Checkpoint.objects.count() == 1


def test_validations_without_the_searcher_metric_clear_it(alice_api, trial):
    services.report_validation(trial, 100, {"loss": 0.5})
    post(alice_api, checkpoints_url(trial), [report(100)])
    items = [{"steps_completed": 100, "metrics": {"acc": 1}}]  # the latest has no "loss"
    response = post(alice_api, validations_url(trial), items)
    assert response.status_code == 201, response.json()
    assert Checkpoint.objects.get().validation_metric is None


def test_insert_checkpoints_stores_every_field_as_bulk_create_does(trial):
    """experiments.batch.insert_checkpoints (one JSON document on PostgreSQL, bulk_create on
    SQLite) against Django's own bulk_create: every column of every row read back."""
    from experiments import batch

    def made(offset):
        checkpoints = [
            services.new_checkpoint(
                trial,
                steps,
                resources={"a b/ü.pt": 2**40, 'q".bin': 0},
                metadata={"nested": {"x": [1, 2.5, None, 'é"\\\n', True]}, "big": 2**62},
            )
            for steps in (offset, offset + 1)
        ]
        checkpoints[0].validation_metric = 0.125
        return checkpoints

    ours = batch.insert_checkpoints(made(10))
    django = Checkpoint.objects.bulk_create(made(20))
    assert all(c.pk and not c._state.adding for c in ours)
    skip = {"id", "uuid", "report_time", "steps_completed"}
    columns = [f.attname for f in Checkpoint._meta.concrete_fields if f.attname not in skip]
    for mine, theirs in zip(ours, django, strict=True):
        stored = Checkpoint.objects.get(pk=mine.pk)
        assert str(stored.uuid) == str(mine.uuid)
        assert stored.steps_completed == theirs.steps_completed - 10
        expected = Checkpoint.objects.get(pk=theirs.pk)
        assert stored.report_time.tzinfo is not None
        assert abs((stored.report_time - expected.report_time).total_seconds()) < 60
        assert {c: getattr(stored, c) for c in columns} == {
            c: getattr(expected, c) for c in columns
        }
