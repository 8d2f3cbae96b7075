"""Retention and GC runs with registered checkpoints (eager; SQLite or PostgreSQL).

A checkpoint pinned by a ModelVersion is kept by every policy, including 0/0/0 and the
deletion of its experiment; the preview says why; a run re-checks at claim time.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptweb.jobs import RunState
from experiments import registry
from experiments.choices import CheckpointState, ExperimentState, GCReason
from experiments.gc import execute, runs
from experiments.gc.preview import gc_preview
from experiments.gc.retention import ranked_candidates
from experiments.models import Checkpoint, Experiment, GCRun
from tests.experiments.gc.builders import (
    assert_gc_invariant,
    expected_files,
    labels_in_state,
    policy_of,
)
from tests.spec import SPEC_POLICIES, spec_example

pytestmark = pytest.mark.django_db


def test_the_spec_example_keeps_its_row_plus_the_registered_9(alice, fs_location, model):
    """Checkpoint 9 has no metric and is not latest: (2,1,1) would delete it."""
    experiment, labels = spec_example(alice, fs_location)
    registry.register_version(model, labels[9], alice)
    kept = gc_preview(experiment, policy_of((2, 1, 1))).retained_ids
    by_id = {c.pk: label for label, c in labels.items()}
    assert [by_id[pk] for pk in kept] == [10, 9, 8, 7, 5]


@pytest.mark.parametrize(("numbers", "saved"), SPEC_POLICIES)
def test_every_policy_keeps_the_registered_checkpoint(
    alice, fs_location, model, run_on_commit, numbers, saved
):
    experiment, labels = spec_example(alice, fs_location)
    registry.register_version(model, labels[9], alice)
    expected = sorted({*saved, 9}, reverse=True)
    with run_on_commit():
        run = runs.set_gc_policy(experiment, policy_of(numbers))
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED
    assert labels_in_state(labels, CheckpointState.COMPLETED) == expected
    assert fs_location.listing() == expected_files(labels[label] for label in expected)
    assert_gc_invariant(fs_location)


def test_the_preview_says_why(alice, fs_location, model):
    experiment, labels = spec_example(alice, fs_location)
    registry.register_version(model, labels[3], alice)
    registry.register_version(model, labels[9], alice)
    other = registry.create_model(alice, "bert")
    registry.register_version(other, labels[9], alice)
    Checkpoint.objects.filter(pk=labels[1].pk).update(protected=True)
    preview = gc_preview(experiment, policy_of((0, 0, 0))).as_dict()
    rows = {row["id"]: row for row in preview["checkpoints"]}
    assert rows[labels[9].pk]["keep"] and rows[labels[3].pk]["keep"]
    assert rows[labels[9].pk]["reason"] == "registered as bert v1, resnet-prod v2"
    assert rows[labels[3].pk]["reason"] == "registered as resnet-prod v1"
    assert rows[labels[1].pk]["reason"] == "protected"
    assert rows[labels[2].pk] == {**rows[labels[2].pk], "keep": False, "reason": None}
    assert preview["retained_ids"] == sorted((labels[n].pk for n in (1, 3, 9)), reverse=True)


def test_the_api_preview_lists_it_kept_with_the_reason(alice, alice_api, fs_location, model):
    experiment, labels = spec_example(alice, fs_location)
    registry.register_version(model, labels[9], alice)
    body = alice_api.get(
        f"/api/v1/experiments/{experiment.pk}/gc-preview"
        "?save_experiment_best=0&save_trial_best=0&save_trial_latest=0"
    ).json()
    assert body["retained_ids"] == [labels[9].pk]
    (row,) = [row for row in body["checkpoints"] if row["keep"]]
    assert row["reason"] == "registered as resnet-prod v1"


def test_a_checkpoint_registered_after_the_preview_is_not_deleted(alice, fs_location, model):
    """The run decided nothing yet when it was queued: its claim sees the new version."""
    experiment, labels = spec_example(alice, fs_location)
    preview = gc_preview(experiment, policy_of((0, 0, 0))).as_dict()
    assert labels[9].pk in preview["deleted_ids"]
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 0)))
    Experiment.objects.filter(pk=experiment.pk).update(
        save_experiment_best=0, save_trial_best=0, save_trial_latest=0
    )
    registry.register_version(model, labels[9], alice)
    execute.execute_run(run.pk)
    assert labels_in_state(labels, CheckpointState.COMPLETED) == [9]
    assert fs_location.listing() == expected_files([labels[9]])


def test_a_single_checkpoint_run_re_checks_at_claim_time(alice, fs_location, model):
    experiment, labels = spec_example(alice, fs_location)
    run = runs.start_gc_run(experiment, GCReason.CHECKPOINT_DELETED, checkpoint=labels[4])
    registry.register_version(model, labels[4], alice)
    execute.execute_run(run.pk)
    labels[4].refresh_from_db()
    assert labels[4].state == CheckpointState.COMPLETED
    assert expected_files([labels[4]]) <= fs_location.listing()


def test_a_claimed_checkpoint_cannot_be_registered(alice, fs_location, model):
    experiment, labels = spec_example(alice, fs_location)
    run = runs.start_gc_run(experiment, GCReason.POLICY_CHANGED, policy=policy_of((0, 0, 0)))
    Experiment.objects.filter(pk=experiment.pk).update(
        save_experiment_best=0, save_trial_best=0, save_trial_latest=0
    )
    GCRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    assert execute.claim_checkpoints(run) == 10
    with pytest.raises(registry.RegistryError, match="DELETING"):
        registry.register_version(model, labels[9], alice)


def test_deleting_the_experiment_keeps_the_files_and_says_why(alice, fs_location, model):
    experiment, labels = spec_example(alice, fs_location)
    registry.register_version(model, labels[9], alice)
    with pytest.raises(runs.CheckpointProtected, match="resnet-prod v1"):
        runs.delete_experiment(experiment)
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.ACTIVE
    assert fs_location.listing() == expected_files(labels.values())


def test_registered_versions_names_every_version(alice, fs_location, model):
    experiment, labels = spec_example(alice, fs_location)
    registry.register_version(model, labels[2], alice)
    registry.register_version(model, labels[2], alice)
    found = registry.registered_versions([labels[1].pk, labels[2].pk])
    assert found == {labels[2].pk: ["resnet-prod v1", "resnet-prod v2"]}
    assert registry.registered_versions([]) == {}


# --- property: registration only ever adds to what is kept ---------------------------------

example_st = st.fixed_dictionaries(
    {
        "policy": st.tuples(*(st.integers(min_value=0, max_value=3),) * 3),
        "registered": st.sets(st.integers(min_value=1, max_value=10), max_size=4),
        "protected": st.sets(st.integers(min_value=1, max_value=10), max_size=2),
    }
)


#: Each example builds the spec's experiment with files: slow, and on function fixtures.
SLOW_EXAMPLES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_EXAMPLES)
@given(example=example_st)
def test_registrations_never_shrink_the_retained_set(alice, fs_location, example):
    experiment, labels = spec_example(alice, fs_location)
    try:
        Checkpoint.objects.filter(pk__in=[labels[n].pk for n in example["protected"]]).update(
            protected=True
        )
        policy = policy_of(example["policy"])
        before = {c.id for c in ranked_candidates(experiment, policy) if c.keep}
        model = registry.create_model(alice, f"m-{experiment.pk}")
        for number in sorted(example["registered"]):
            registry.register_version(model, labels[number], alice)
        after = {c.id for c in ranked_candidates(experiment, policy) if c.keep}
        registered = {labels[n].pk for n in example["registered"]}
        assert before <= after
        assert after == before | registered
        preview = gc_preview(experiment, policy).as_dict()
        assert set(preview["retained_ids"]) == after
        for row in preview["checkpoints"]:
            if row["id"] in registered:
                assert row["reason"].startswith("registered as ")
    finally:
        Checkpoint.objects.filter(experiment=experiment).update(protected=False)
        registry.Model.objects.filter(owner=alice).delete()
        Experiment.objects.filter(pk=experiment.pk).delete()
