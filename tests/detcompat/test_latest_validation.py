"""/det-compat/ reads one validation per (trial, step), the latest, the way ckptweb does
(``experiments.services.latest_validations``): many reports at a checkpoint's step, or at
another pairing of its trials and steps, are never fetched (issue 25 item 9)."""

from __future__ import annotations

import pytest

from ckptweb.detcompat.auth import issue_token
from experiments import services
from experiments.models import Validation
from tests.experiments.pages.helpers import instances_made
from tests.experiments.pages.test_compare_page import report_many
from tests.factories import bulk_checkpoints

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowded_steps(experiment):
    """Two trials, 50 reports at each one's checkpoint step and 50 at the other pairing."""
    first = services.create_trial(experiment, {"lr": 0.1})
    second = services.create_trial(experiment, {"lr": 0.2})
    report_many(first, 100, 0.25)
    report_many(second, 200, 0.75)
    report_many(first, 200, 9.0)
    report_many(second, 100, 9.0)
    bulk_checkpoints(first, [(100, 0.25, "COMPLETED", False, 1)])
    bulk_checkpoints(second, [(200, 0.75, "COMPLETED", False, 1)])
    return experiment


def test_listing_checkpoints_reads_the_latest_validation_of_each(client, alice, crowded_steps):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(alice)}"}
    url = f"/det-compat/api/v1/experiments/{crowded_steps.pk}/checkpoints"

    with instances_made(Validation) as made:
        response = client.get(url, {"sortByAttr": "SORT_BY_SEARCHER_METRIC"}, **auth)

    assert response.status_code == 200, response.content
    fetched = sorted((v.steps_completed, v.metrics["loss"]) for v in made)
    assert fetched == [(100, 0.25), (200, 0.75)]
    rows = response.json()["checkpoints"]
    assert [r["training"]["validationMetrics"]["avgMetrics"]["loss"] for r in rows] == [0.25, 0.75]
    assert [r["training"]["searcherMetric"] for r in rows] == [0.25, 0.75]


def test_one_checkpoint_and_preview_gc_read_one_validation(client, alice, crowded_steps):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(alice)}"}
    checkpoint = crowded_steps.checkpoints.get(steps_completed=100)

    with instances_made(Validation) as made:
        one = client.get(f"/det-compat/api/v1/checkpoints/{checkpoint.uuid}", **auth)
        preview = client.get(
            f"/det-compat/experiments/{crowded_steps.pk}/preview_gc",
            {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 0},
            **auth,
        )

    assert one.status_code == 200 and preview.status_code == 200, preview.content
    assert one.json()["checkpoint"]["training"]["validationMetrics"]["avgMetrics"]["loss"] == 0.25
    assert [r["ValidationMetrics"]["loss"] for r in preview.json()["checkpoints"]] == [0.25, 0.75]
    assert len(made) == 1 + 2
