"""On PostgreSQL the retained set is read by LATERAL top-k per trial, equal to the window form.

``retention.retained`` switches on the database vendor; the window query
(``retention.retained_query``) stays the reference on both. Skipped on SQLite (no LATERAL).
"""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ckptweb.lib.policy import Policy
from experiments import services
from experiments.choices import CheckpointState
from experiments.gc import retention
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="LATERAL is PostgreSQL's"),
]

STATES = [CheckpointState.COMPLETED] * 6 + [
    CheckpointState.PARTIALLY_DELETED,
    CheckpointState.DELETED,
    CheckpointState.ERROR,
    CheckpointState.DELETING,
]


@pytest.mark.parametrize("smaller_is_better", [True, False])
def test_lateral_equals_the_window_query(alice, default_storage, smaller_is_better):
    rng = random.Random(17)
    experiment = factories.make_experiment(
        alice, default_storage, smaller_is_better=smaller_is_better
    )
    for _ in range(5):
        trial = services.create_trial(experiment)
        rows = [
            (
                rng.choice([10, 20, 30, 40, 50]),  # ties on steps
                rng.choice([None, 0.1, 0.2, 0.2, 0.5, 0.9]),  # ties on metric
                rng.choice(STATES),
                rng.random() < 0.1,
                rng.randrange(1, 100),
            )
            for _ in range(40)
        ]
        factories.bulk_checkpoints(trial, rows)
    for policy in [
        Policy(0, 1, 1),
        Policy(2, 1, 1),
        Policy(3, 0, 0),
        Policy(0, 2, 0),
        Policy(1, 3, 2),
    ]:
        with CaptureQueriesContext(connection) as queries:
            kept = retention.retained(experiment, policy)
        (sql,) = [q["sql"] for q in queries.captured_queries]
        assert "ROW_NUMBER" not in sql.upper()
        if policy.save_trial_best or policy.save_trial_latest:
            assert "LATERAL" in sql
        assert kept == dict(retention.retained_query(experiment, policy)), policy
