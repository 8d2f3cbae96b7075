"""Hostile query strings (NUL, invalid UTF-8, huge numbers) on every page and list: never a 500.

PostgreSQL refuses NUL in text parameters, and int() of a 5000-digit page number raises:
both reached the database or the paginator unfiltered before.
"""

import pytest

from experiments import services
from tests.boundary.helpers import pages_of_everything
from tests.factories import client_for

pytestmark = pytest.mark.django_db

HOSTILE = ["%00", "a%00b", "%ED%A0%80", "%FF%FE", "9" * 5000, "-1", "1e400", "%27%22%3C"]
PARAMS = ["q", "state", "sort", "ordering", "page", "trial", "save_trial_best", "search", "kind"]


def test_no_query_string_makes_a_500(alice, staff, default_storage):
    experiment = services.create_experiment(alice, {"name": "e", "searcher": {"metric": "loss"}})
    trial = services.create_trial(experiment, {})
    services.report_validation(trial, 1, {"loss": 0.5})
    services.report_checkpoint(trial, 1, {"w.bin": 1})
    client = client_for(staff, raise_request_exception=False)
    failures = []
    for url in pages_of_everything():
        for param in PARAMS:
            for value in HOSTILE:
                joiner = "&" if "?" in url else "?"
                response = client.get(f"{url}{joiner}{param}={value}")
                if response.status_code >= 500:
                    failures.append((url, param, value, response.status_code))
    assert not failures, failures[:20]
