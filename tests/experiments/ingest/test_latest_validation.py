"""``services.latest_validations``: the one rule for "the latest validation at a checkpoint's
step", which the report path, the batch, the checkpoint and compare pages and det-compat use.
"""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import services
from experiments.models import Checkpoint
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
