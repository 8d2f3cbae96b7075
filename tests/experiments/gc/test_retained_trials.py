"""Verdicts for a page's trials only: ``retained(…, trials=…)``, ``Verdicts`` and the chart.

A page that shows a bounded number of checkpoints asks about their trials alone (issue 17:
the whole retained set of 1M checkpoints in 10k trials is ~100 ms). The answer must be
exactly the whole set's for every checkpoint of the asked trials, and never call a
checkpoint kept that the whole set deletes. On SQLite and PostgreSQL (window and LATERAL).
"""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ckptweb.lib.policy import Policy
from experiments import services
from experiments.charts import data
from experiments.choices import GC_CANDIDATE_STATES, CheckpointState
from experiments.gc import retention
from experiments.models import Checkpoint
from tests import factories

pytestmark = pytest.mark.django_db

STATES = [CheckpointState.COMPLETED] * 6 + [
    CheckpointState.PARTIALLY_DELETED,
    CheckpointState.DELETED,
    CheckpointState.ERROR,
]
POLICIES = [Policy(0, 1, 1), Policy(2, 1, 1), Policy(3, 0, 0), Policy(0, 2, 0), Policy(1, 3, 2)]


@pytest.fixture
def experiment(alice, default_storage):
    """6 trials of 40 checkpoints with tied steps and metrics, some protected or not live."""
    rng = random.Random(23)
    experiment = factories.make_experiment(alice, default_storage)
    for _ in range(6):
        trial = services.create_trial(experiment)
        rows = [
            (
                rng.choice([10, 20, 30, 40]),
                rng.choice([None, 0.1, 0.2, 0.2, 0.7]),
                rng.choice(STATES),
                rng.random() < 0.05,
                rng.randrange(1, 100),
            )
            for _ in range(40)
        ]
        factories.bulk_checkpoints(trial, rows)
    return experiment


def trial_of(experiment) -> dict[int, int]:
    return dict(Checkpoint.objects.filter(experiment=experiment).values_list("id", "trial_id"))


@pytest.mark.parametrize("policy", POLICIES, ids=str)
def test_asking_about_some_trials_answers_exactly_for_them(experiment, policy):
    whole = retention.retained(experiment, policy)
    trials = sorted(experiment.trials.values_list("id", flat=True))
    owner = trial_of(experiment)
    for asked in ([trials[0]], trials[1:3], trials[::2], trials):
        part = retention.retained(experiment, policy, trials=asked)
        assert set(part) <= set(whole), "nothing is kept that the whole set deletes"
        in_asked = {pk for pk, trial in owner.items() if trial in asked}
        assert set(part) & in_asked == set(whole) & in_asked, (policy, asked)
        assert all(part[pk] == whole[pk] for pk in part)  # the same sizes
    assert retention.retained(experiment, policy, trials=[]) == {}


def test_verdicts_ask_once_for_everything_wanted(experiment):
    policy = Policy(1, 1, 1)
    trials = list(experiment.trials.values_list("id", flat=True))
    verdicts = retention.Verdicts(experiment, policy)
    verdicts.want(trials[:2])
    verdicts.want(trials[1:3])
    with CaptureQueriesContext(connection) as queries:
        kept = verdicts.kept
        assert verdicts.kept is kept
    assert len(queries.captured_queries) == 1
    whole = retention.retained(experiment, policy)
    owner = trial_of(experiment)
    assert {pk for pk in whole if owner[pk] in trials[:3]} <= set(kept)
    # ``shown`` carries the chart's columns of every kept one, as the table has them.
    rows = Checkpoint.objects.filter(pk__in=kept).values_list(
        "id", *retention.Verdicts.SHOWN_COLUMNS
    )
    assert {row[0]: row for row in rows} == verdicts.shown
    verdicts.want(trials[3:4])
    with CaptureQueriesContext(connection) as queries:
        verdicts.kept  # noqa: B018
    assert len(queries.captured_queries) == 1, "only the newly wanted trial is asked about"


@pytest.mark.parametrize("policy", POLICIES, ids=str)
def test_sampled_chart_markers_carry_the_whole_sets_verdict(experiment, policy):
    """The experiment page's chart asks about its sampled trials only; every marker's
    kept/deleted is still the whole retained set's, and kept ones are among the markers."""
    whole = retention.retained(experiment, policy)
    candidates = retention.candidates(experiment)
    count = candidates.count()
    with CaptureQueriesContext(connection) as queries:
        markers = data.chart_checkpoints(
            candidates, retention.Verdicts(experiment, policy), count, max_markers=30
        )
    assert markers.sampled and len(queries.captured_queries) == 2
    assert markers.checkpoints, "the sample found markers"
    states = dict(candidates.values_list("id", "state"))
    for marker in markers.checkpoints:
        assert states[marker.id] in GC_CANDIDATE_STATES
        assert marker.keep == (marker.id in whole), marker
    if whole:
        assert any(marker.keep for marker in markers.checkpoints), "kept ones stay visible"
    # The same chart from the whole set (the GC page) gives the same verdicts.
    known = data.chart_checkpoints(
        candidates, retention.Verdicts(experiment, policy, whole), count, max_markers=30
    )
    assert all(m.keep == (m.id in whole) for m in known.checkpoints)


def test_a_trial_chart_draws_no_other_trials_best(experiment):
    policy = Policy(3, 0, 0)  # the experiment's three best, from any trial
    trial = experiment.trials.order_by("id").first()
    candidates = retention.candidates(experiment).filter(trial=trial)
    verdicts = retention.Verdicts(experiment, policy)
    verdicts.want([trial.pk])
    markers = data.chart_checkpoints(
        candidates, verdicts, candidates.count(), max_markers=5, trial_id=trial.pk
    )
    assert {marker.trial_id for marker in markers.checkpoints} == {trial.pk}
