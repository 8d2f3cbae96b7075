"""The retention engine: the spec's table row for row, and properties against a reference."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptweb.lib.policy import DELETE_EVERYTHING, Policy
from experiments.choices import CheckpointState, ExperimentState
from experiments.gc.preview import gc_preview
from experiments.gc.retention import ranked_candidates, retained
from experiments.models import Checkpoint, Experiment, Trial
from tests.factories import bulk_checkpoints, make_experiment
from tests.retention_oracle import reference_retained
from tests.spec import SPEC_POLICIES


def retained_checkpoints(experiment, policy: Policy) -> list[int]:
    """Ids the policy keeps, descending (the preview's whole list)."""
    return gc_preview(experiment, policy).retained_ids


def deleted_checkpoints(experiment, policy: Policy) -> list[int]:
    """Ids the policy deletes, descending (the preview's whole list)."""
    return gc_preview(experiment, policy).deleted_ids


@pytest.fixture
def spec_example(spec_example, spec_ids):
    """The spec's example; returns (experiment, map from spec checkpoint id to DB id)."""
    return spec_example, spec_ids


@pytest.mark.django_db
@pytest.mark.parametrize(("policy", "expected"), SPEC_POLICIES, ids=lambda v: str(v))
def test_spec_table_row(spec_example, policy, expected):
    experiment, spec_to_db = spec_example
    db_to_spec = {db: spec for spec, db in spec_to_db.items()}
    kept = retained_checkpoints(experiment, Policy(*policy))
    assert [db_to_spec[pk] for pk in kept] == expected
    deleted = deleted_checkpoints(experiment, Policy(*policy))
    assert sorted(db_to_spec[pk] for pk in deleted) == sorted(set(range(1, 11)) - set(expected))


@pytest.mark.django_db
def test_it_decides_in_one_query(spec_example, django_assert_num_queries):
    experiment, spec_to_db = spec_example
    with django_assert_num_queries(1):
        kept = retained(experiment, Policy(2, 1, 1))
    assert set(kept) == {spec_to_db[n] for n in (10, 8, 7, 5)}
    with django_assert_num_queries(2):
        ranked = ranked_candidates(experiment, Policy(2, 1, 1))
    assert [c.id for c in ranked if c.keep] == [spec_to_db[n] for n in (10, 8, 7, 5)]


@pytest.mark.django_db
def test_preview_counts_in_constant_queries(spec_example, django_assert_num_queries):
    experiment, spec_to_db = spec_example
    sizes = dict(Checkpoint.objects.values_list("id", "size_bytes"))
    # The retained set, the (id, size) pairs, one page of rows, the versions pinning them;
    # the example is still running (its trials ACTIVE): one more, each running trial's
    # latest checkpoint (all kept by this policy, so no query of their rows follows).
    assert experiment.state == "ACTIVE"
    with django_assert_num_queries(5):
        preview = gc_preview(experiment, Policy(0, 1, 1))
    assert preview.running_trials == []
    kept = {spec_to_db[n] for n in (10, 7, 5)}
    assert set(preview.retained_ids) == kept
    assert (preview.retained_count, preview.deleted_count, preview.count) == (3, 7, 10)
    assert preview.reclaimed_bytes == sum(v for k, v in sizes.items() if k not in kept)


@pytest.mark.django_db
def test_preview_pages_rows_but_not_the_id_lists(spec_example):
    experiment, spec_to_db = spec_example
    everything = gc_preview(experiment, Policy(0, 1, 1))
    first = gc_preview(experiment, Policy(0, 1, 1), page=1, page_size=4)
    last = gc_preview(experiment, Policy(0, 1, 1), page=3, page_size=4)
    past = gc_preview(experiment, Policy(0, 1, 1), page=4, page_size=4)
    for preview in (first, last, past):
        assert preview.retained_ids == everything.retained_ids
        assert preview.deleted_ids == everything.deleted_ids
        assert preview.reclaimed_bytes == everything.reclaimed_bytes
        assert preview.count == 10
    ids = sorted(spec_to_db.values(), reverse=True)
    assert [row.id for row in first.checkpoints] == ids[:4]
    assert [row.id for row in last.checkpoints] == ids[8:]
    assert past.checkpoints == []
    assert [row.keep for row in everything.checkpoints] == [
        pk in everything.retained_ids for pk in ids
    ]


@pytest.mark.django_db
def test_protected_and_non_candidates(spec_example):
    experiment, spec_to_db = spec_example
    Checkpoint.objects.filter(pk=spec_to_db[1]).update(protected=True)
    Checkpoint.objects.filter(pk=spec_to_db[7]).update(state=CheckpointState.DELETED)
    kept = retained_checkpoints(experiment, Policy(1, 0, 0))
    # 7 is gone, so the best is now 8 (0.3); 1 is protected.
    assert kept == [spec_to_db[8], spec_to_db[1]]
    assert spec_to_db[7] not in deleted_checkpoints(experiment, Policy(1, 0, 0))


@pytest.mark.django_db
def test_larger_is_better(alice, default_storage):
    experiment = make_experiment(alice, default_storage, smaller_is_better=False)
    trial = Trial.objects.create(experiment=experiment)
    ok = CheckpointState.COMPLETED
    a, b, c = bulk_checkpoints(
        trial, [(1, 0.9, ok, False, 1), (2, 0.95, ok, False, 1), (3, None, ok, False, 1)]
    )
    assert retained_checkpoints(experiment, Policy(1, 0, 0)) == [b.id]
    assert retained_checkpoints(experiment, Policy(0, 0, 1)) == [c.id]


@pytest.mark.django_db
def test_experiment_policy_falls_back_to_storage_then_default(alice, default_storage):
    experiment = make_experiment(alice, default_storage)
    assert experiment.gc_policy == Policy(0, 1, 1)
    default_storage.save_experiment_best, default_storage.save_trial_latest = 3, 4
    default_storage.save()
    assert default_storage.default_policy() == Policy(3, 1, 4)
    experiment = Experiment.objects.select_related("storage").get(pk=experiment.pk)
    assert experiment.gc_policy == Policy(3, 1, 4)
    experiment.save_trial_latest = 0
    assert experiment.gc_policy == experiment.applied_policy == Policy(3, 1, 0)
    experiment.state = ExperimentState.DELETING
    assert experiment.applied_policy == DELETE_EVERYTHING


# --- property tests against a pure-Python reference ----------------------------------------

STATES = [
    CheckpointState.COMPLETED,
    CheckpointState.COMPLETED,
    CheckpointState.COMPLETED,
    CheckpointState.PARTIALLY_DELETED,
    CheckpointState.DELETED,
    CheckpointState.DELETING,
    CheckpointState.ERROR,
]
checkpoint_rows = st.tuples(
    st.sampled_from([100, 200, 300, 300, 400]),  # steps, with ties
    st.one_of(st.none(), st.sampled_from([0.1, 0.2, 0.2, 0.5, 1.0])),  # metric, with ties
    st.sampled_from(STATES),
    st.booleans(),  # protected
    st.integers(min_value=0, max_value=1000),
)
experiments = st.lists(st.lists(checkpoint_rows, max_size=8), min_size=1, max_size=4)
policies = st.tuples(*(st.integers(min_value=0, max_value=4) for _ in range(3)))


def build(owner, storage, trials_rows, smaller_is_better):
    experiment = make_experiment(owner, storage, smaller_is_better=smaller_is_better)
    rows = []
    for trial_rows in trials_rows:
        trial = Trial.objects.create(experiment=experiment)
        for ckpt, (steps, metric, state, protected, _size) in zip(
            bulk_checkpoints(trial, trial_rows), trial_rows, strict=True
        ):
            rows.append(
                {
                    "id": ckpt.id,
                    "trial": trial.id,
                    "steps": steps,
                    "metric": metric,
                    "state": state,
                    "protected": protected,
                }
            )
    return experiment, rows


HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.django_db
@HYPOTHESIS
@given(trials_rows=experiments, smaller=st.booleans(), policy=policies)
def test_engine_matches_reference(alice, default_storage, trials_rows, smaller, policy):
    experiment, rows = build(alice, default_storage, trials_rows, smaller)
    assert retained_checkpoints(experiment, Policy(*policy)) == reference_retained(
        rows, smaller, policy
    )
    experiment.delete()


@pytest.mark.django_db
@HYPOTHESIS
@given(trials_rows=experiments, smaller=st.booleans(), policy=policies, which=st.integers(0, 2))
def test_raising_any_save_never_deletes_more(
    alice, default_storage, trials_rows, smaller, policy, which
):
    experiment, _ = build(alice, default_storage, trials_rows, smaller)
    raised = list(policy)
    raised[which] += 1
    before = set(deleted_checkpoints(experiment, Policy(*policy)))
    after = set(deleted_checkpoints(experiment, Policy(*raised)))
    assert after <= before
    experiment.delete()


@pytest.mark.django_db
@HYPOTHESIS
@given(trials_rows=experiments, smaller=st.booleans(), policy=policies)
def test_combined_policy_keeps_union_of_parts(alice, default_storage, trials_rows, smaller, policy):
    experiment, _ = build(alice, default_storage, trials_rows, smaller)
    e, t, latest = policy
    parts = set()
    for single in (Policy(e, 0, 0), Policy(0, t, 0), Policy(0, 0, latest)):
        parts |= set(retained_checkpoints(experiment, single))
    assert set(retained_checkpoints(experiment, Policy(e, t, latest))) == parts
    experiment.delete()
