"""``Client.report_checkpoints`` / ``report_validations`` against a live server."""

import uuid

import pytest

from ckptweb.accounts.services import create_token
from ckptweb.client import ApiError, Client, batch
from experiments.models import Checkpoint, Validation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(live_server, alice):
    return Client(url=live_server.url, token=create_token(alice, "test")[1])


def test_it_reports_in_batches_of_the_server_limit(api, trial, monkeypatch):
    monkeypatch.setattr(batch, "BATCH_SIZE", 3)
    sent = []
    request = api.request
    monkeypatch.setattr(api, "request", lambda *a, **k: sent.append(k) or request(*a, **k))
    ids = [uuid.uuid4() for _ in range(7)]
    reports = [
        {"steps_completed": i, "resources": {"m.pt": i}, "uuid": u} for i, u in enumerate(ids)
    ]
    created = api.report_checkpoints(trial.pk, reports)
    assert [c["uuid"] for c in created] == [str(u) for u in ids]
    assert [len(body["json"]["items"]) for body in sent] == [3, 3, 1]
    validations = api.report_validations(
        trial.pk, [{"steps_completed": i, "metrics": {"loss": i / 10}} for i in range(7)]
    )
    assert len(validations) == 7 == Validation.objects.count()
    assert Checkpoint.objects.get(steps_completed=4).validation_metric == 0.4


def test_a_refused_batch_names_the_item(api, trial):
    with pytest.raises(ApiError) as refused:
        api.report_checkpoints(trial.pk, [{"steps_completed": 1}, {"steps_completed": -1}])
    assert refused.value.status == 400
    assert refused.value.message.startswith("items[1].steps_completed")
    assert set(refused.value.body["items"]) == {"1"}
    assert not Checkpoint.objects.exists()
