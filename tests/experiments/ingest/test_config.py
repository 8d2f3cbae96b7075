"""Experiment config parsing: every rejection names its field (the master config is
tests/storage/test_config.py's)."""

import pytest

from experiments import services
from experiments.config import parse_experiment_config
from storage.config import REDACTED, ConfigError
from storage.models import StorageConfig

BASE = """
name: mnist
searcher:
  metric: validation_loss
"""


def rejects(text, field, words):
    with pytest.raises(ConfigError) as info:
        parse_experiment_config(text)
    assert info.value.field == field
    for word in words:
        assert word in info.value.message
    return info.value


def test_it_accepts_a_determined_config_and_keeps_unknown_keys():
    parsed = parse_experiment_config(
        """
name: mnist
description: digits
searcher:
  name: single
  metric: accuracy
  smaller_is_better: false
hyperparameters: {lr: 0.1}
min_validation_period: {batches: 100}
checkpoint_storage:
  type: s3
  bucket: ckpts
  prefix: team-a
  access_key: AKIDEXAMPLE
  secret_key: s3cr3t-value
  save_trial_best: 2
"""
    )
    assert parsed.metric == "accuracy" and parsed.smaller_is_better is False
    assert parsed.raw["min_validation_period"] == {"batches": 100}
    assert parsed.storage.type == "s3"
    assert parsed.storage.policy == {"save_trial_best": 2}
    redacted = parsed.redacted()
    assert redacted["checkpoint_storage"]["secret_key"] == REDACTED
    assert "s3cr3t-value" not in str(redacted)
    assert parsed.raw["checkpoint_storage"]["secret_key"] == "s3cr3t-value"


def test_yaml_syntax_error_names_the_line():
    error = rejects("name: x\nsearcher: [unclosed\n", "config", ["YAML syntax error", "line"])
    assert "line 3" in error.message or "line 2" in error.message


@pytest.mark.parametrize(
    ("storage", "field", "words"),
    [
        ("type: ftp\n    host_path: /x", "checkpoint_storage.type", ["ftp", "unknown"]),
        ("type: s3", "checkpoint_storage.bucket", ["required"]),
        ("type: gcs", "checkpoint_storage.bucket", ["required"]),
        ("type: shared_fs", "checkpoint_storage.host_path", ["required"]),
        ("save_trial_best: -1", "checkpoint_storage.save_trial_best", ["non-negative"]),
        ("save_trial_best: 1.5", "checkpoint_storage.save_trial_best", ["integer"]),
        ("save_trial_best: many", "checkpoint_storage.save_trial_best", ["integer"]),
        ("save_experiment_best: true", "checkpoint_storage.save_experiment_best", ["integer"]),
        ("type: s3\n    bucket: b\n    prefix: a/../b", "checkpoint_storage.prefix", [".."]),
        ("type: s3\n    bucket: b\n    prefix: ..", "checkpoint_storage.prefix", [".."]),
        (
            "type: shared_fs\n    host_path: /mnt\n    storage_path: ../etc",
            "checkpoint_storage.storage_path",
            ["escapes host_path"],
        ),
        (
            "type: shared_fs\n    host_path: /mnt\n    storage_path: /etc",
            "checkpoint_storage.storage_path",
            ["escapes host_path"],
        ),
        ("type: shared_fs\n    host_path: relative", "checkpoint_storage.host_path", ["absolute"]),
        ("type: gcs\n    bucket: b\n    secret_key: x", "checkpoint_storage.secret_key", ["gcs"]),
    ],
)
def test_it_rejects_bad_storage(storage, field, words):
    rejects(BASE + "checkpoint_storage:\n    " + storage + "\n", field, words)


def test_it_requires_the_searcher_metric():
    rejects("name: x\nsearcher: {name: single}\n", "searcher.metric", ["required"])
    rejects("name: x\n", "searcher", ["metric"])


def test_smaller_is_better_must_be_boolean():
    rejects(
        "searcher: {metric: m, smaller_is_better: maybe}\n",
        "searcher.smaller_is_better",
        ["true or false"],
    )


def test_config_must_be_a_mapping():
    rejects("- a\n- b\n", "config", ["mapping"])


@pytest.mark.django_db
def test_no_storage_section_uses_the_default(alice, default_storage):
    experiment = services.create_experiment(alice, BASE)
    assert experiment.storage == default_storage
    assert experiment.gc_policy.as_dict() == {
        "save_experiment_best": 0,
        "save_trial_best": 1,
        "save_trial_latest": 1,
    }


@pytest.mark.django_db
def test_storage_with_type_is_matched_and_reused(alice, default_storage):
    text = BASE + "checkpoint_storage: {type: s3, bucket: ckpts, secret_key: abc, access_key: k}\n"
    first = services.create_experiment(alice, text)
    second = services.create_experiment(alice, text, name="again")
    assert first.storage == second.storage != default_storage
    assert first.storage.bucket == "ckpts" and first.storage.secret_key == "abc"
    assert "abc" not in first.config_yaml and "abc" not in str(first.config)
    other = services.create_experiment(
        alice, BASE + "checkpoint_storage: {type: s3, bucket: other}\n"
    )
    assert other.storage != first.storage
    assert StorageConfig.objects.count() == 3


@pytest.mark.django_db
def test_policy_from_config_and_storage_default(alice, default_storage):
    default_storage.save_trial_latest = 4
    default_storage.save()
    experiment = services.create_experiment(
        alice, BASE + "checkpoint_storage: {save_experiment_best: 3}\n"
    )
    assert experiment.storage == default_storage
    assert experiment.gc_policy.as_dict() == {
        "save_experiment_best": 3,
        "save_trial_best": 1,
        "save_trial_latest": 4,
    }
