"""``ckptweb.integrations.session.experiment_config``: an integration's ``config=`` dict
becomes an experiment config; a key it does not know is an error naming it."""

import pytest

from ckptweb.integrations.session import experiment_config, trial_id


def test_the_config_dict_becomes_an_experiment_config():
    config = {
        "metric": "val_acc",
        "smaller_is_better": False,
        "policy": {"save_trial_latest": 2},
        "storage": {"type": "shared_fs", "host_path": "/mnt/ckpts"},
        "description": "tiny",
    }
    assert experiment_config(config, "val_loss") == {
        "searcher": {"metric": "val_acc", "smaller_is_better": False},
        "checkpoint_storage": {
            "type": "shared_fs",
            "host_path": "/mnt/ckpts",
            "save_trial_latest": 2,
        },
        "description": "tiny",
    }
    assert experiment_config(None, "val_loss") == {"searcher": {"metric": "val_loss"}}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"metrc": "x"}, "config: unknown key 'metrc'"),
        ({"policy": {"save_best": 1}}, "config.policy: unknown key 'save_best'"),
    ],
)
def test_an_unknown_key_is_named(config, message):
    with pytest.raises(ValueError, match=message):
        experiment_config(config, "val_loss")


def test_a_trial_is_its_dict_or_its_id():
    assert trial_id({"id": 7, "state": "ACTIVE"}) == trial_id("7") == 7
