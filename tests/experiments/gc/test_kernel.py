"""The deletion kernel (``experiments.gc.kernel``) has the last word before storage is called.

The attacks: a writer that bypassed every guard (a direct UPDATE, a registration written
straight to the table) pins a checkpoint after a run claimed it, or pins a DELETED
checkpoint whose UUID an orphan scan found. Before the kernel, the run deleted what it held
whatever happened since; now the files stay, the checkpoint says it needs attention, and
the other checkpoints of the batch still go.
"""

import uuid as uuid_lib

import pytest

from ckptweb.jobs import RunState
from experiments import registry
from experiments.choices import CheckpointState, GCReason
from experiments.gc import execute, kernel, runs
from experiments.gc.record import NEEDS_ATTENTION
from experiments.models import Checkpoint, GCRun, ModelVersion
from storage.backends import get_backend
from tests.experiments.gc.builders import policy_of
from tests.spec import spec_example

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed(alice, fs_location):
    """The spec example with every checkpoint claimed by a 0/0/0 run, nothing deleted yet."""
    experiment, labels = spec_example(alice, fs_location)
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 0)))
    GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    experiment.save_experiment_best = experiment.save_trial_best = 0
    experiment.save_trial_latest = 0
    experiment.save()
    assert execute.claim_checkpoints(run) == 10
    return experiment, labels, GCRun.objects.get(pk=run.pk), fs_location


def test_a_run_never_deletes_what_was_pinned_after_its_claim(claimed, alice):
    experiment, labels, run, store = claimed
    Checkpoint.objects.filter(pk=labels[3].pk).update(protected=True)  # bypassing the service
    model = registry.create_model(alice, "bypass")
    ModelVersion.objects.create(model=model, version=1, checkpoint=labels[7])
    execute.delete_claimed(run, get_backend(experiment.storage), final_attempt=True)

    for label in (3, 7):
        checkpoint = Checkpoint.objects.get(pk=labels[label].pk)
        assert checkpoint.state == CheckpointState.ERROR
        assert checkpoint.error.startswith(f"{NEEDS_ATTENTION}not deleted: the checkpoint is")
        assert all(store.exists(checkpoint.uuid, path) for path in checkpoint.resources)
    others = Checkpoint.objects.filter(experiment=experiment).exclude(
        pk__in=[labels[3].pk, labels[7].pk]
    )
    assert set(others.values_list("state", flat=True)) == {CheckpointState.DELETED}
    assert not any(name in {str(c.uuid) for c in others} for name, _ in store.listing())


def test_refusals_for_a_run(claimed, alice):
    experiment, labels, run, _ = claimed
    Checkpoint.objects.filter(pk=labels[1].pk).update(protected=True)
    Checkpoint.objects.filter(pk=labels[2].pk).update(state=CheckpointState.COMPLETED)
    stranger = str(uuid_lib.uuid4())
    uuids = [str(labels[n].uuid) for n in (1, 2, 4)] + [stranger]
    refused = kernel.refusals(uuids, run.pk)
    assert refused == {
        str(labels[1].uuid): "the checkpoint is protected",
        str(labels[2].uuid): f"the checkpoint is COMPLETED, not held by GC run {run.pk}",
        stranger: "no checkpoint has this UUID",
    }
    assert kernel.refusals(uuids, run.pk + 1)[str(labels[4].uuid)].endswith(
        f"not held by GC run {run.pk + 1}"
    )


def test_refusals_for_an_orphan_deletion(claimed, alice):
    experiment, labels, run, _ = claimed
    Checkpoint.objects.filter(pk__in=[labels[1].pk, labels[2].pk]).update(
        state=CheckpointState.DELETED
    )
    model = registry.create_model(alice, "old")
    ModelVersion.objects.create(model=model, version=1, checkpoint=labels[2])
    unknown = str(uuid_lib.uuid4())
    refused = kernel.refusals([str(labels[n].uuid) for n in (1, 2, 3)] + [unknown])
    assert refused == {
        str(labels[2].uuid): "the checkpoint is registered as a model version",
        str(labels[3].uuid): "a checkpoint with this UUID exists now (DELETING)",
    }
