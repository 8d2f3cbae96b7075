"""``services.latest_validations``: the one rule for "the latest validation at a checkpoint's
step", which the report path, the batch, the checkpoint and compare pages and det-compat use.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import contextmanager

from django.db import connection
from django.test.utils import CaptureQueriesContext

from ckptweb.lib.db import OTHER_PARAMETERS
from experiments import services
from experiments.models import Checkpoint, Trial, Validation
from tests.experiments.pages.helpers import instances_made
from tests.factories import bulk_checkpoints


def test_the_latest_report_at_the_step_wins_in_the_checkpoints_order(experiment, trial):
    other = services.create_trial(experiment, {"lr": 0.2})
    services.report_validation(trial, 10, {"loss": 3.0})
    services.report_validation(trial, 10, {"loss": 2.0})  # reported later: it wins
    services.report_validation(trial, 20, {"loss": 1.0})
    services.report_validation(other, 20, {"loss": 9.0})  # another trial's, same step
    checkpoints = bulk_checkpoints(
        trial, [(20, None, "COMPLETED", False, 1), (10, None, "COMPLETED", False, 1)]
    )
    checkpoints += bulk_checkpoints(other, [(10, None, "COMPLETED", False, 1)])
    with CaptureQueriesContext(connection) as queries:
        found = services.latest_validations(checkpoints)
    assert len(queries) == 1
    assert [v.metrics if v else None for v in found] == [{"loss": 1.0}, {"loss": 2.0}, None]
    assert services.latest_validation(checkpoints[1]).metrics == {"loss": 2.0}
    assert services.latest_validation(checkpoints[2]) is None


def test_unsaved_checkpoints_and_no_checkpoints(trial):
    services.report_validation(trial, 5, {"loss": 0.5})
    unsaved = Checkpoint(trial=trial, experiment_id=trial.experiment_id, steps_completed=5)
    assert services.latest_validation(unsaved).metrics == {"loss": 0.5}
    with CaptureQueriesContext(connection) as queries:
        assert services.latest_validations([]) == []
    assert len(queries) == 0


def test_many_trials_and_steps_split_into_few_queries_that_fit_sqlite(experiment):
    """250 trials x 4 steps, each step reported twice: every statement stays within SQLite's
    parameter limit (lowered to 99 here when on SQLite) and its expression depth
    (``MAX_TRIAL_TERMS`` trials per OR), and each (trial, step) is one row, the latest."""
    trials = Trial.objects.bulk_create([Trial(experiment=experiment) for _ in range(250)])
    Validation.objects.bulk_create(
        Validation(trial=t, steps_completed=s, metrics={"loss": float(s + k)})
        for t in trials
        for s in (1, 2, 3, 4)
        for k in (0, 100)
    )
    checkpoints = [
        Checkpoint(trial=t, experiment_id=experiment.pk, steps_completed=s)
        for t in trials
        for s in (1, 2, 3, 4, 5)
    ]
    with (
        lowered_parameter_limit(99),
        CaptureQueriesContext(connection) as queries,
        instances_made(Validation) as made,
    ):
        found = services.latest_validations(checkpoints)
    assert len(made) == 250 * 4
    losses = [v.metrics["loss"] if v else None for v in found]
    assert losses[:5] == [101.0, 102.0, 103.0, 104.0, None]  # the later report of each step
    assert [c.steps_completed == 5 for c in checkpoints] == [loss is None for loss in losses]
    if connection.vendor == "sqlite":
        per_query = (99 - OTHER_PARAMETERS) // 6  # a trial's term binds its id and 5 steps
        assert len(queries) == math.ceil(250 / per_query)
    else:
        assert len(queries) == math.ceil(250 / services.MAX_TRIAL_TERMS)


@contextmanager
def lowered_parameter_limit(limit: int):
    """SQLite's bound-parameter limit of this connection lowered to ``limit`` (else nothing)."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    old = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    try:
        yield
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, old)
