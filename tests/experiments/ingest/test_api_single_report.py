"""POST trials/{id}/checkpoints: what one report costs in statements, and that the
plain body check refuses what the serializer refused (issue 17 item 3)."""

import pytest
from rest_framework.test import APIClient

from ckptweb.accounts.models import ApiToken
from ckptweb.accounts.services import create_token
from experiments import services
from experiments.models import Checkpoint
from tests.experiments.ingest.statements import statements

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_api(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_token(alice, 'test')[1]}")
    return client


def test_a_report_takes_seven_statements_with_real_token_auth(token_api, trial):
    services.report_validation(trial, 100, {"loss": 0.25})
    url = f"/api/v1/trials/{trial.pk}/checkpoints"
    body = {"steps_completed": 100, "resources": {"model.pt": 10}, "metadata": {"a": [1]}}
    response, seen = statements(token_api, url, body)
    assert response.status_code == 201, response.json()
    # token (with its user) and its first use noted (at most once a minute), trial (with its
    # experiment), then the report's transaction: the validation link, the insert and the
    # experiment summary's counters.
    expected = ["SELECT", "UPDATE", "SELECT", "SAVEPOINT", "SELECT", "INSERT", "UPDATE", "RELEASE"]
    assert seen == expected
    stored = Checkpoint.objects.get(uuid=response.json()["uuid"])
    assert stored.validation_metric == 0.25 and stored.size_bytes == 10


def test_an_unknown_token_is_refused_every_request(token_api, trial, alice):
    url = f"/api/v1/trials/{trial.pk}/checkpoints"
    assert token_api.post(url, {"steps_completed": 1}, format="json").status_code == 201
    ApiToken.objects.filter(user=alice).delete()
    assert token_api.post(url, {"steps_completed": 2}, format="json").status_code == 401
    assert Checkpoint.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"steps_completed": -1}, "steps_completed: Ensure this value is greater than or equal"),
        ({}, "steps_completed: This field is required."),
        ({"steps_completed": 1, "uuid": "x"}, "uuid: Must be a valid UUID."),
        ({"steps_completed": 1, "resources": {"a": "5"}}, "resources"),
        ({"steps_completed": 1, "resources": {"../a": 5}}, "resources"),
        ({"steps_completed": 1, "metadata": {"a": "\u0000"}}, "metadata"),
        ({"steps_completed": 1, "metadata": {"a": "x" * (1024 * 1024)}}, "metadata is 1,"),
        ([1], "Invalid data. Expected a dictionary, but got list."),
    ],
)
def test_bad_reports_are_refused_naming_the_field(alice_api, trial, body, message):
    response = alice_api.post(f"/api/v1/trials/{trial.pk}/checkpoints", body, format="json")
    assert response.status_code == 400, response.json()
    assert message in response.json()["message"]
    assert not Checkpoint.objects.exists()


def test_a_batch_of_1000_takes_a_fixed_number_of_statements(token_api, trial):
    # CaptureQueriesContext around a test-client request can see none (request_started
    # resets the query log), so statements are counted with an execute wrapper.
    url = f"/api/v1/trials/{trial.pk}/checkpoints:batch"
    body = {"items": [{"steps_completed": i, "resources": {"a": i}} for i in range(1000)]}
    response, seen = statements(token_api, url, body)
    assert response.status_code == 201, response.json()
    assert [kind for kind in seen if kind != "INSERT"] == [
        *["SELECT", "UPDATE", "SELECT"],  # token, its first use noted, trial
        *["SAVEPOINT", "SELECT", "SELECT", "UPDATE", "RELEASE"],  # uuids, validations, summary
    ]
    assert 1 <= seen.count("INSERT") <= 20  # one on PostgreSQL; 14 under SQLite's limit
    items = [{"steps_completed": i, "metrics": {"loss": i}} for i in range(1000)]
    response, seen = statements(token_api, url.replace("checkpoints", "validations"), items)
    assert response.status_code == 400  # not an object: nothing stored, no statement beyond
    response, seen = statements(
        token_api, url.replace("checkpoints", "validations"), {"items": items}
    )
    assert response.status_code == 201
    assert len(seen) < 20
