"""The GC policy value (``ckptweb.lib.policy``): parsing, fallbacks, text, and refusals
that name the field."""

import pytest

from ckptweb.lib.policy import DELETE_EVERYTHING, InvalidPolicy, Policy


@pytest.mark.parametrize(
    "bad", [{"save_trial_best": "-1"}, {"save_trial_best": "1.5"}, {"save_trial_best": "x"}]
)
def test_policy_rejects_bad_values(bad):
    with pytest.raises(InvalidPolicy) as info:
        Policy.from_mapping(bad)
    assert info.value.field == "save_trial_best"
    assert "save_trial_best" in str(info.value)


def test_policy_fills_missing_values_from_fallback():
    policy = Policy.from_mapping({"save_trial_best": "3"}, fallback={"save_experiment_best": 2})
    assert policy == Policy(save_experiment_best=2, save_trial_best=3, save_trial_latest=1)
    fallback = Policy(4, 5, 6)
    assert Policy.from_mapping({"save_trial_latest": ""}, fallback=fallback) == fallback


def test_policy_formats_itself():
    policy = Policy(2, 0, 1)
    assert str(policy) == policy.text == "2/0/1"
    assert f"policy {Policy()}" == "policy 0/1/1"
    assert str(DELETE_EVERYTHING) == "0/0/0"
    assert policy.as_dict() == {
        "save_experiment_best": 2,
        "save_trial_best": 0,
        "save_trial_latest": 1,
    }
    assert Policy.from_mapping(policy.as_dict()) == policy


@pytest.mark.parametrize("bad", [-1, True, "1", 1.5, 2**31])
def test_policy_refuses_a_bad_value_when_built(bad):
    with pytest.raises(InvalidPolicy) as info:
        Policy(0, 1, bad)
    assert info.value.field == "save_trial_latest"
