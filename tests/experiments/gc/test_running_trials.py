"""A policy change names the running trials whose latest checkpoint it would delete.

Issue 25, deliverable 2: a trial still training resumes from its latest checkpoint, so the
GC page, ``ckpt`` and the API's preview (field ``running_trials``) name each running trial
(ACTIVE or PAUSED, in an ACTIVE or PAUSED experiment) whose latest candidate the policy
deletes. Before, every confirmation only counted "will delete N".
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ckptweb.lib.policy import Policy
from experiments import services
from experiments.choices import ExperimentState, TrialState
from experiments.gc.preview import gc_preview
from experiments.models import Checkpoint, Experiment, Trial
from tests.factories import add_checkpoints

pytestmark = pytest.mark.django_db

NONE_KEPT = "save_experiment_best=0&save_trial_best=0&save_trial_latest=0"


@pytest.fixture
def training(experiment):
    """A running experiment: trial ``a`` (3 checkpoints, still ACTIVE), trial ``b`` (2,
    PAUSED) and trial ``c`` (2, COMPLETED: it resumes nothing)."""
    trials, latest = {}, {}
    for name, steps, state in (
        ("a", (100, 200, 300), TrialState.ACTIVE),
        ("b", (50, 150), TrialState.PAUSED),
        ("c", (10, 20), TrialState.COMPLETED),
    ):
        trial = services.create_trial(experiment, {"name": name})
        rows = add_checkpoints(trial, [(s, 1.0 / s) for s in steps])
        Trial.objects.filter(pk=trial.pk).update(state=state)
        trials[name], latest[name] = trial, rows[-1]
    return experiment, trials, latest


def named(body):
    return [(t["trial_id"], t["checkpoint_id"], t["steps_completed"]) for t in body]


def test_the_api_preview_names_running_trials_losing_their_latest(alice_api, training):
    experiment, trials, latest = training
    url = f"/api/v1/experiments/{experiment.pk}/gc-preview"
    body = alice_api.get(f"{url}?{NONE_KEPT}").json()
    assert named(body["running_trials"]) == [
        (trials["a"].pk, latest["a"].pk, 300),
        (trials["b"].pk, latest["b"].pk, 150),
    ]
    assert body["running_trials"][0]["uuid"] == str(latest["a"].uuid)
    # Keeping one latest per trial spares them all; keeping the best overall spares a only
    # when a's latest is the best (it is: 1/300 is the smallest loss).
    assert alice_api.get(f"{url}?save_trial_latest=1").json()["running_trials"] == []
    only_best = alice_api.get(
        f"{url}?save_experiment_best=1&save_trial_best=0&save_trial_latest=0"
    ).json()
    assert named(only_best["running_trials"]) == [(trials["b"].pk, latest["b"].pk, 150)]


def test_a_latest_already_gone_names_the_one_before(alice_api, training):
    """The latest *candidate*: a DELETED checkpoint resumes nothing."""
    experiment, trials, latest = training
    Checkpoint.objects.filter(pk=latest["a"].pk).update(state="DELETED")
    body = alice_api.get(f"/api/v1/experiments/{experiment.pk}/gc-preview?{NONE_KEPT}").json()
    assert [(t["trial_id"], t["steps_completed"]) for t in body["running_trials"]] == [
        (trials["a"].pk, 200),
        (trials["b"].pk, 150),
    ]


@pytest.mark.parametrize("state", [ExperimentState.COMPLETED, ExperimentState.CANCELED])
def test_an_ended_experiment_has_no_running_trials_and_costs_no_query(training, state):
    experiment, _, _ = training
    Experiment.objects.filter(pk=experiment.pk).update(state=state)
    experiment.refresh_from_db()
    none_kept = Policy(0, 0, 0)
    with CaptureQueriesContext(connection) as ended:
        assert gc_preview(experiment, none_kept).running_trials == []
    Experiment.objects.filter(pk=experiment.pk).update(state=ExperimentState.PAUSED)
    experiment.refresh_from_db()
    with CaptureQueriesContext(connection) as running:
        assert len(gc_preview(experiment, none_kept).running_trials) == 2
    assert len(running) - len(ended) == 2  # the latest per running trial, then their rows


def test_the_gc_page_warns_and_links_each_running_trial(alice_client, training):
    experiment, trials, latest = training
    url = reverse("experiments:gc-preview", args=[experiment.pk])
    none_kept = {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 0}
    html = alice_client.get(url, none_kept).content.decode()
    assert 'id="gc-running-trials"' in html
    assert "2 running trials would lose their latest checkpoint." in html
    for name in ("a", "b"):
        assert reverse("experiments:trial", args=[trials[name].pk]) in html
        assert reverse("experiments:checkpoint", args=[latest[name].uuid]) in html
    warning = html.split('id="gc-running-trials"')[1].split("</div>")[0]
    assert reverse("experiments:trial", args=[trials["c"].pk]) not in warning
    kept = alice_client.get(url, {"save_trial_latest": 1}).content.decode()
    assert "gc-running-trials" not in kept
