"""The master config (the default storage and its policy): every rejection names its field.

The experiment config's ``checkpoint_storage`` section is checked with the experiment config
(tests/experiments/ingest/test_config.py).
"""

import pytest

from storage.config import ConfigError, parse_master_config
from storage.models import StorageConfig


def test_master_config_needs_a_type():
    with pytest.raises(ConfigError) as info:
        parse_master_config("checkpoint_storage: {save_trial_best: 2}\n")
    assert info.value.field == "checkpoint_storage.type"


@pytest.mark.django_db
def test_apply_master_config_command(tmp_path, settings):
    from django.core.management import call_command

    path = tmp_path / "master.yaml"
    path.write_text(
        f"checkpoint_storage:\n  type: shared_fs\n  host_path: {tmp_path}\n  save_trial_best: 2\n"
    )
    settings.CKPTWEB_CONFIG = str(path)
    call_command("apply_master_config")
    call_command("apply_master_config")  # idempotent
    storage = StorageConfig.objects.get(is_default=True)
    assert storage.host_path == str(tmp_path)
    assert storage.default_policy().as_dict() == {
        "save_experiment_best": 0,
        "save_trial_best": 2,
        "save_trial_latest": 1,
    }
    assert StorageConfig.objects.count() == 1


@pytest.mark.django_db
def test_apply_master_config_reports_bad_file(tmp_path, settings):
    from django.core.management import CommandError, call_command

    path = tmp_path / "master.yaml"
    path.write_text("checkpoint_storage:\n  type: s3\n")
    settings.CKPTWEB_CONFIG = str(path)
    with pytest.raises(CommandError, match="checkpoint_storage.bucket is required"):
        call_command("apply_master_config")
