"""Settings from the environment: loud failures naming the variable, a kept SECRET_KEY."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from tests import REPO as ROOT


def run_check(tmp_path, **env):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "SECRET_KEY", "DEBUG", "CELERY_BROKER_URL")
    }
    environment.update(CKPTWEB_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "yes"),
        ("DATABASE_URL", "nonsense://"),
        ("CELERY_TASK_TIME_LIMIT", "soon"),
        ("CKPTWEB_GC_SWEEP_SECONDS", "-5"),
    ],
)
def test_malformed_variable_fails_naming_it(tmp_path, variable, value):
    result = run_check(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_secret_key_is_generated_once_and_kept(tmp_path):
    assert run_check(tmp_path).returncode == 0
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    assert len(first) >= 40
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert run_check(tmp_path).returncode == 0
    assert key_file.read_text() == first


def test_debug_is_off_by_default(settings):
    # The test process inherits no DEBUG; Django's test runner forces DEBUG off anyway, so
    # check the parsed value in a fresh interpreter.
    code = "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='ckptweb.settings';"
    code += (
        "from django.conf import settings;print(settings.DEBUG, settings.CELERY_TASK_ALWAYS_EAGER)"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "CELERY_BROKER_URL")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert out.stdout.split() == ["False", "True"], out.stderr


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
