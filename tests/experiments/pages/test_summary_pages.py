"""The experiment list and page read the summary row: constant queries, counts that follow GC.

The list used to aggregate every checkpoint per experiment row; now its counts, bytes and
best metric are ``ExperimentSummary``'s, so its query count is the same at 10 or 3,000
checkpoints, and what a service changes shows on the next view.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experiments import services, summary
from tests import factories

pytestmark = pytest.mark.django_db


def list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("experiments:list")).status_code == 200
    return len(queries.captured_queries)


def test_the_list_costs_the_same_at_any_number_of_checkpoints(alice_client, alice, default_storage):
    experiment = services.create_experiment(alice, {"name": "e", "searcher": {"metric": "loss"}})
    trial = services.create_trial(experiment)
    factories.bulk_checkpoints(trial, [(s, 0.5, "COMPLETED", False, 1) for s in range(10)])
    summary.refresh(experiment)
    small = list_queries(alice_client)
    factories.bulk_checkpoints(trial, [(s, 0.1, "COMPLETED", False, 1) for s in range(3000)])
    summary.refresh(experiment)
    assert list_queries(alice_client) == small
    html = alice_client.get(reverse("experiments:list")).content.decode()
    assert "3010 <span" in html and ">0.1000<" in html


def test_a_report_shows_on_the_next_view_without_a_rebuild(alice_client, alice, default_storage):
    experiment = services.create_experiment(alice, {"name": "e", "searcher": {"metric": "loss"}})
    trial = services.create_trial(experiment)
    factories.add_checkpoints(trial, [(10, 0.7), (20, 0.2)])
    page = alice_client.get(reverse("experiments:detail", args=[experiment.pk])).content.decode()
    assert "2 live" in page
    listed = alice_client.get(reverse("experiments:list")).content.decode()
    assert ">0.2000<" in listed and "2 <span" in listed
