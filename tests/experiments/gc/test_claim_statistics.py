"""A large claim refreshes the planner's statistics, so a run's batches stay index reads.

Found by the GC bench (issue 17): claiming 100k checkpoints turned them DELETING at once;
with the statistics from before, PostgreSQL expected one row per run and each batch's three
queries scanned every row the run still held (100k went at a third of 10k's rate). The
claim now runs ``ANALYZE`` of the filtered columns when it claimed many (PostgreSQL only).
"""

from __future__ import annotations

import pytest
from django.db import connection

from ckptweb.jobs import RunState
from experiments.choices import GCReason
from experiments.gc import execute, runs
from experiments.models import Experiment, GCRun
from tests.experiments.gc.builders import policy_of
from tests.spec import spec_example

pytestmark = pytest.mark.django_db


def claim_statements(experiment) -> list[str]:
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 0)))
    Experiment.objects.filter(pk=experiment.pk).update(
        save_experiment_best=0, save_trial_best=0, save_trial_latest=0
    )
    GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    seen = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert execute.claim_checkpoints(run) == 10
    return [sql for sql in seen if sql.upper().startswith("ANALYZE")]


@pytest.mark.parametrize("threshold", [10, 11])
def test_a_large_claim_analyzes_the_checkpoints(alice, fs_location, monkeypatch, threshold):
    experiment, _labels = spec_example(alice, fs_location)
    monkeypatch.setattr(execute, "ANALYZE_AFTER_CLAIMING", threshold)
    analyzed = claim_statements(experiment)
    if connection.vendor != "postgresql" or threshold > 10:
        assert analyzed == []  # SQLite's planner keeps no such statistics; a small claim
    else:
        assert analyzed == ['ANALYZE "experiments_checkpoint" ("gc_run_id", "state")']
