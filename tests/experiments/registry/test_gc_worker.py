"""A real Celery worker on PostgreSQL and S3 (moto) never deletes a registered checkpoint."""

from __future__ import annotations

import pytest

from ckptweb.jobs import RunState
from experiments import registry, services
from experiments.choices import CheckpointState, ExperimentState
from experiments.gc import runs
from tests.experiments.gc.builders import assert_gc_invariant, expected_files, labels_in_state
from tests.experiments.gc.workers import finished  # noqa: F401  (fixture
from tests.servers import wait_for
from tests.spec import spec_example

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_an_aggressive_policy_on_s3_keeps_the_registered_objects(gc_worker, alice, s3_location):
    experiment, labels = spec_example(alice, s3_location, policy=(0, 0, 0))
    model = registry.create_model(alice, "resnet-prod")
    registry.register_version(model, labels[9], alice)
    registry.register_version(model, labels[4], alice)
    before = s3_location.listing()
    run = services.set_experiment_state(experiment, ExperimentState.COMPLETED)
    run = wait_for(lambda: finished(run.pk), message="the GC run", log=gc_worker.log_text)
    assert run.state == RunState.SUCCEEDED, run.errors
    assert (run.total, run.deleted) == (8, 8)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [9, 4]
    assert s3_location.listing() == expected_files([labels[9], labels[4]])
    assert expected_files([labels[9], labels[4]]) <= before
    with pytest.raises(runs.CheckpointProtected, match="resnet-prod v1, resnet-prod v2"):
        runs.delete_experiment(experiment)
    assert s3_location.listing() == expected_files([labels[9], labels[4]])
    assert_gc_invariant(s3_location)
