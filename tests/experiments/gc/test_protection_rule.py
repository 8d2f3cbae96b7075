"""Protection and metadata go through one writer that applies the deletion rule.

Two bugs this guards, each through the API, the checkpoint page and the bulk action:
protecting a checkpoint of an experiment being deleted answered 200 (the 0/0/0 run then
skipped it and the experiment stayed DELETING for good), and protecting a checkpoint a GC
run already holds answered 200 while the run went on to delete it.
"""

import pytest
from django.urls import reverse

from ckptweb.jobs import RunState
from experiments import summary
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import execute, runs
from experiments.models import Checkpoint, Experiment, GCRun
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpoints(trial):
    made = factories.add_checkpoints(trial, [(100, 0.5), (200, 0.4)])
    summary.summary_of(trial.experiment)  # built now, so the writers' deltas land on it
    return made


def being_deleted(experiment):
    Experiment.objects.filter(pk=experiment.pk).update(state=ExperimentState.DELETING)


def held_by_a_run(checkpoint):
    """A GC run that has claimed ``checkpoint`` (DELETING) and not yet deleted it."""
    run = runs.start_gc_run(
        checkpoint.experiment, GCReason.CHECKPOINT_DELETED, checkpoint=checkpoint
    )
    GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    assert execute.claim_checkpoints(run) == 1
    checkpoint.refresh_from_db()
    assert checkpoint.state == CheckpointState.DELETING
    return run


def protected_flags(checkpoints):
    return list(
        Checkpoint.objects.filter(pk__in=[c.pk for c in checkpoints])
        .order_by("pk")
        .values_list("protected", flat=True)
    )


def summary_protected(experiment):
    """The protected count the experiment's summary keeps, after checking it is exact."""
    kept = summary.summary_of(Experiment.objects.get(pk=experiment.pk)).protected
    assert kept == Checkpoint.objects.filter(experiment=experiment, protected=True).count()
    return kept


# --- API ------------------------------------------------------------------------------------


def test_api_protect_while_the_experiment_is_deleted_is_409(alice_api, experiment, checkpoints):
    being_deleted(experiment)
    response = alice_api.patch(
        f"/api/v1/checkpoints/{checkpoints[0].uuid}", {"protected": True}, format="json"
    )
    assert response.status_code == 409, response.content
    assert "being deleted" in response.json()["detail"]
    assert protected_flags(checkpoints) == [False, False]
    assert summary_protected(experiment) == 0


def test_api_metadata_edit_while_the_experiment_is_deleted_is_409(
    alice_api, experiment, checkpoints
):
    being_deleted(experiment)
    response = alice_api.patch(
        f"/api/v1/checkpoints/{checkpoints[0].uuid}", {"metadata": {"a": 1}}, format="json"
    )
    assert response.status_code == 409
    checkpoints[0].refresh_from_db()
    assert checkpoints[0].metadata != {"a": 1}


def test_api_protect_a_checkpoint_a_run_holds_is_409_naming_the_run(
    alice_api, experiment, checkpoints
):
    run = held_by_a_run(checkpoints[0])
    response = alice_api.patch(
        f"/api/v1/checkpoints/{checkpoints[0].uuid}",
        {"protected": True, "metadata": {"kept": True}},
        format="json",
    )
    assert response.status_code == 409
    assert f"GC run {run.pk}" in response.json()["detail"]
    checkpoints[0].refresh_from_db()
    assert checkpoints[0].protected is False
    assert checkpoints[0].metadata != {"kept": True}  # all or nothing
    assert summary_protected(experiment) == 0


def test_protect_a_deleted_checkpoint_is_refused_and_changes_nothing(
    alice_api, alice_client, experiment, checkpoints
):
    """Found by tests/boundary/test_protect_during_run.py: a protect arriving after the
    run deleted the checkpoint answered 200 and flagged files that no longer exist."""
    Checkpoint.objects.filter(pk=checkpoints[0].pk).update(state=CheckpointState.DELETED)
    response = alice_api.patch(
        f"/api/v1/checkpoints/{checkpoints[0].uuid}", {"protected": True}, format="json"
    )
    assert response.status_code == 409, response.content
    assert "is DELETED" in response.json()["detail"]
    assert protected_flags(checkpoints) == [False, False]
    assert summary_protected(experiment) == 0
    page = protect_on_page(alice_client, checkpoints[0])
    assert "nothing to protect" in page.content.decode()
    assert protected_flags(checkpoints) == [False, False]


def test_api_protect_still_works_on_a_live_checkpoint(alice_api, experiment, checkpoints):
    response = alice_api.patch(
        f"/api/v1/checkpoints/{checkpoints[1].uuid}", {"protected": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["protected"] is True
    assert protected_flags(checkpoints) == [False, True]
    assert summary_protected(experiment) == 1


# --- the checkpoint page --------------------------------------------------------------------


def protect_on_page(client, checkpoint):
    return client.post(
        reverse("experiments:checkpoint-protect", args=[checkpoint.uuid]),
        {"protected": "1"},
        follow=True,
    )


def test_page_protect_while_the_experiment_is_deleted_is_refused(
    alice_client, experiment, checkpoints
):
    being_deleted(experiment)
    page = protect_on_page(alice_client, checkpoints[0])
    assert page.status_code == 200
    text = page.content.decode()
    assert "being deleted" in text
    assert "garbage collection will keep it" not in text
    assert protected_flags(checkpoints) == [False, False]


def test_page_protect_a_checkpoint_a_run_holds_is_refused(alice_client, experiment, checkpoints):
    run = held_by_a_run(checkpoints[0])
    page = protect_on_page(alice_client, checkpoints[0])
    text = page.content.decode()
    assert f"GC run {run.pk}" in text
    assert "garbage collection will keep it" not in text
    assert protected_flags(checkpoints) == [False, False]


# --- the bulk action ------------------------------------------------------------------------


def bulk_protect(client, checkpoints):
    return client.post(
        reverse("experiments:bulk"),
        {"action": "protect", "checkpoints": [str(c.uuid) for c in checkpoints]},
        follow=True,
    )


def test_bulk_protect_while_the_experiment_is_deleted_changes_nothing(
    alice_client, experiment, checkpoints
):
    being_deleted(experiment)
    text = bulk_protect(alice_client, checkpoints).content.decode()
    assert "Protected 0 checkpoint(s)" in text
    assert "being deleted" in text
    assert protected_flags(checkpoints) == [False, False]
    assert summary_protected(experiment) == 0


def test_bulk_protect_skips_the_checkpoint_a_run_holds(alice_client, experiment, checkpoints):
    run = held_by_a_run(checkpoints[0])
    text = bulk_protect(alice_client, checkpoints).content.decode()
    assert "Protected 1 checkpoint(s)" in text
    assert f"GC run {run.pk}" in text
    assert protected_flags(checkpoints) == [False, True]
    assert summary_protected(experiment) == 1


def test_the_run_then_deletes_what_it_held_and_keeps_the_protected_one(
    alice_client, experiment, checkpoints
):
    run = held_by_a_run(checkpoints[0])
    bulk_protect(alice_client, checkpoints)
    execute.execute_run(run.pk)
    states = dict(Checkpoint.objects.values_list("pk", "state"))
    assert states[checkpoints[0].pk] == CheckpointState.DELETED
    assert states[checkpoints[1].pk] == CheckpointState.COMPLETED
