"""Fixtures of the page tests: signed-in clients and the spec's example experiment."""

import pytest
from django.test import Client

from experiments.demo import SPEC_TABLE, build_spec_example


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def spec_example(alice, default_storage):
    """The spec's example experiment, owned by alice, with real files on shared_fs."""
    return build_spec_example(alice)


@pytest.fixture
def spec_ids(spec_example):
    """Map the spec table's checkpoint ids (1..10) to database ids via trial and steps."""
    trials = list(spec_example.trials.order_by("id").values_list("id", flat=True))
    by_position = {
        (trial_id, steps): pk
        for pk, trial_id, steps in spec_example.checkpoints.values_list(
            "id", "trial_id", "steps_completed"
        )
    }
    return {
        number: by_position[(trials[trial - 1], steps)]
        for number, (trial, steps, _) in enumerate(SPEC_TABLE, start=1)
    }


def spec_to_db(spec_ids, text: str) -> str:
    """``"8,7"`` in the spec's numbering as the same checkpoints' database ids, descending."""
    if not text:
        return ""
    ids = sorted((spec_ids[int(n)] for n in text.split(",")), reverse=True)
    return ",".join(str(i) for i in ids)
