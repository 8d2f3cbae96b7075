"""Fixtures of the attack tests: raw JSON posting, and every page and list another user sees.

The attacker is alice, an ordinary account; the victims are everyone else: after each
attack ``assert_everything_answers`` signs in as staff (who sees every page) and as bob and
asserts that every page and every API list answers 200.
"""

from __future__ import annotations

import json

import pytest

from experiments.models import Checkpoint, Experiment, Trial
from tests.factories import client_for


def post_raw(client, url: str, text: str | bytes, method: str = "post"):
    """Send ``text`` as the JSON body exactly as given (lone surrogates, NaN, deep nesting)."""
    body = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return getattr(client, method)(url, data=body, content_type="application/json")


def dumps(value) -> str:
    """JSON text with every non-ASCII character escaped (so lone surrogates survive)."""
    return json.dumps(value, ensure_ascii=True)


def pages_of_everything() -> list[str]:
    """Every page and API list that shows data another user stored."""
    urls = ["/", "/storage/", "/api/v1/experiments", "/api/v1/experiments?ordering=name"]
    for experiment in Experiment.objects.all():
        urls += [
            f"/experiments/{experiment.pk}/",
            f"/experiments/{experiment.pk}/gc/",
            f"/experiments/{experiment.pk}/gc/preview/?save_experiment_best=0"
            "&save_trial_best=0&save_trial_latest=0",
            f"/api/v1/experiments/{experiment.pk}",
            f"/api/v1/experiments/{experiment.pk}/checkpoints",
            f"/api/v1/experiments/{experiment.pk}/gc-preview",
        ]
    for trial in Trial.objects.all():
        urls += [f"/trials/{trial.pk}/", f"/api/v1/trials/{trial.pk}"]
    for checkpoint in Checkpoint.objects.all():
        urls += [f"/checkpoints/{checkpoint.uuid}/", f"/api/v1/checkpoints/{checkpoint.uuid}"]
    return urls


@pytest.fixture
def assert_everything_answers(staff, bob):
    """Call after an attack: every page and list is 200 for staff and for bob."""

    def check():
        failures = []
        for user in (staff, bob):
            client = client_for(user)
            for url in pages_of_everything():
                if url == "/storage/" and not user.is_staff:
                    continue
                response = client.get(url)
                if response.status_code != 200:
                    failures.append((user.username, url, response.status_code))
        assert not failures, failures

    return check
