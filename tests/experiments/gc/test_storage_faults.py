"""After a storage fault the rows tell what storage holds (issue 25, item 4, the lost answer).

The attack: S3 deletes the objects of a DeleteObjects request, but its answer is lost (the
connection is reset after the server did the work). The run took the error for the truth and
left rows listing every file and byte while none existed. Now a failed batch is listed
again, and the listing decides. The outage (nothing reaches S3) still ends ERROR with the
rows untouched, and the sweep finishes the job once S3 is back.

Real parts: moto's S3 server behind ``tests.faults.FaultProxy``, a real HTTP proxy.
"""

from __future__ import annotations

import pytest

from ckptweb.jobs import RunState
from ckptweb.lib.policy import Policy
from experiments import services
from experiments.choices import CheckpointState
from experiments.gc import runs
from experiments.gc.execute import execute_run
from experiments.gc.sweep import sweep
from experiments.models import Checkpoint, GCRun
from tests import factories
from tests.faults import FaultProxy

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secret_watch")]

KEEP_LATEST = Policy(save_experiment_best=0, save_trial_best=0, save_trial_latest=1)


@pytest.fixture
def proxied(s3_store):
    """An S3 store whose StorageConfig reaches moto through a fault proxy."""
    proxy = FaultProxy(s3_store.config.endpoint_url).start()
    s3_store.config.endpoint_url = proxy.endpoint
    s3_store.config.save()
    yield s3_store, proxy
    proxy.stop()


@pytest.fixture
def three(proxied, alice):
    """alice's experiment on the proxied store: three checkpoints of one trial, files in S3."""
    store, _proxy = proxied
    experiment = factories.make_experiment(alice, store.config)
    trial = services.create_trial(experiment, {})
    made = [factories.add_checkpoint(trial, store, steps, None) for steps in (100, 200, 300)]
    return experiment, made


def rows(checkpoints) -> list[tuple]:
    """(state, resources, size_bytes) of each checkpoint, fresh from the database."""
    fresh = Checkpoint.objects.in_bulk([c.pk for c in checkpoints])
    return [(fresh[c.pk].state, fresh[c.pk].resources, fresh[c.pk].size_bytes) for c in checkpoints]


def files_of(checkpoints) -> set[tuple[str, str]]:
    return {(str(c.uuid), path) for c in checkpoints for path in c.resources}


def test_a_lost_delete_answer_leaves_rows_that_match_storage(proxied, three):
    store, proxy = proxied
    experiment, (first, second, latest) = three
    proxy.mode = "lose_delete_reply"
    run = runs.set_gc_policy(experiment, KEEP_LATEST)
    execute_run(run.pk)

    assert proxy.forwarded["POST delete"] >= 1  # S3 got the request and did the work
    assert store.listing() == files_of([latest])  # nothing of the two is left
    assert rows([first, second]) == [(CheckpointState.DELETED, {}, 0)] * 2
    assert rows([latest]) == [(CheckpointState.COMPLETED, latest.resources, latest.size_bytes)]
    run.refresh_from_db()
    assert (run.state, run.deleted, run.failed) == (RunState.SUCCEEDED, 2, 0)
    assert run.reclaimed_bytes == first.size_bytes + second.size_bytes


def test_an_outage_leaves_the_rows_and_the_sweep_finishes_once_it_heals(proxied, three):
    store, proxy = proxied
    experiment, (first, second, latest) = three
    before = rows([first, second])
    proxy.mode = "refuse"
    run = runs.set_gc_policy(experiment, KEEP_LATEST)
    execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.failed == 2
    assert store.listing() == files_of([first, second, latest])  # nothing reached S3
    assert [state for state, *_ in rows([first, second])] == [CheckpointState.ERROR] * 2
    assert [rest for _, *rest in rows([first, second])] == [rest for _, *rest in before]

    proxy.mode = "pass"  # S3 is back
    started = sweep()
    assert started
    for run_id in started:
        execute_run(run_id)
    assert GCRun.objects.get(pk=started[-1]).state == RunState.SUCCEEDED
    assert store.listing() == files_of([latest])
    assert rows([first, second]) == [(CheckpointState.DELETED, {}, 0)] * 2
    assert sweep() == []  # nothing left to retry
