"""Registration and a GC claim are serialized by the experiment's row lock (PostgreSQL).

A claim holds the lock while it decides; a registration of one of the checkpoints it is
claiming waits, then sees DELETING and is refused — it never pins a checkpoint whose files
are being deleted. (SQLite serializes all writers anyway.)
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from ckptweb.jobs import RunState
from experiments import registry
from experiments.choices import CheckpointState, GCReason
from experiments.gc import execute
from experiments.models import Checkpoint, Experiment, GCRun, ModelVersion
from tests.experiments.gc.builders import policy_of
from tests.spec import spec_example

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_registration_waits_for_the_claim_and_is_refused(alice, fs_location):
    if connection.vendor != "postgresql":
        pytest.skip("row-lock ordering is PostgreSQL's; SQLite serializes every writer")
    experiment, labels = spec_example(alice, fs_location)
    model = registry.create_model(alice, "resnet-prod")
    Experiment.objects.filter(pk=experiment.pk).update(
        save_experiment_best=0, save_trial_best=0, save_trial_latest=0
    )
    # Created directly, not through start_gc_run: with autocommit its on_commit would run
    # the whole (eager) run at once.
    run = GCRun.objects.create(
        experiment=experiment,
        reason=GCReason.POLICY_CHANGED,
        policy=policy_of((0, 0, 0)).as_dict(),
        state=RunState.RUNNING,
    )
    claimed, release, outcome = threading.Event(), threading.Event(), {}

    def claim():
        try:
            with transaction.atomic():
                outcome["claimed"] = execute.claim_checkpoints(run)
                claimed.set()
                release.wait(10)
        finally:
            connections.close_all()

    def register():
        try:
            registry.register_version(model, labels[9], alice)
            outcome["registered"] = True
        except registry.RegistryError as exc:
            outcome["refused"] = str(exc)
        finally:
            connections.close_all()

    claimer = threading.Thread(target=claim)
    claimer.start()
    assert claimed.wait(10)
    registrar = threading.Thread(target=register)
    registrar.start()
    registrar.join(0.5)
    assert registrar.is_alive(), "the registration must wait for the claim's lock"
    release.set()
    claimer.join(10)
    registrar.join(10)
    assert outcome["claimed"] == 10, outcome
    assert "DELETING" in outcome["refused"]
    assert not ModelVersion.objects.exists()
    assert Checkpoint.objects.get(pk=labels[9].pk).state == CheckpointState.DELETING
