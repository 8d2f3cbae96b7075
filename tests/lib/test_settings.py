"""Settings from the environment: loud failures naming the variable, a kept SECRET_KEY."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from tests import REPO as ROOT
from tests.factories import password_for


def run_check(tmp_path, *options, **env):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "SECRET_KEY", "DEBUG", "CELERY_BROKER_URL")
    }
    environment.update(CKPTWEB_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *options],
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
        ("CKPTWEB_ACCEL_REDIRECT_PREFIX", "_files"),
        ("CKPTWEB_ACCEL_REDIRECT_PREFIX", "/_files"),
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


HTTPS = {"CKPTWEB_HTTPS": "1", "DEBUG": "0", "SECRET_KEY": "k3" + "x7Qp_-vL9" * 7}


def test_the_https_switch_makes_check_deploy_clean(tmp_path):
    """CKPTWEB_HTTPS=1 with a real key: Secure cookies, HSTS, the proxy's header, redirects;
    ``check --deploy`` has nothing to say (and says it with errors shown at WARNING)."""
    result = run_check(tmp_path, "--deploy", "--fail-level", "WARNING", **HTTPS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_the_switch_check_deploy_names_what_https_needs(tmp_path):
    result = run_check(tmp_path, "--deploy", DEBUG="0", SECRET_KEY=HTTPS["SECRET_KEY"])
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


#: Prints the settings named in argv, one repr a line.
SHOW_SETTINGS = (
    "import sys, django; django.setup(); from django.conf import settings; "
    "print(*(repr(getattr(settings, name)) for name in sys.argv[1:]), sep='\\n')"
)


def test_the_https_knobs():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CKPTWEB_")}
    environment.update(
        DJANGO_SETTINGS_MODULE="ckptweb.settings",
        CKPTWEB_HTTPS="1",
        CKPTWEB_SSL_REDIRECT="0",
        CKPTWEB_HSTS_SECONDS="3600",
    )
    names = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"]
    out = subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS, *names],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert out.stdout.split() == ["False", "3600", "True"], out.stderr


@pytest.mark.django_db
def test_plain_http_cookies_are_not_secure(client, alice, settings):
    """Without the switch (make run), signing in over plain HTTP works: no Secure cookie,
    no redirect to https, no HSTS, and X-Forwarded-Proto is not trusted."""
    assert not settings.SECURE_SSL_REDIRECT and settings.SECURE_PROXY_SSL_HEADER is None
    page = client.get("/accounts/login/")
    assert not page.cookies["csrftoken"]["secure"]
    signed_in = client.post(
        "/accounts/login/", {"username": "alice", "password": password_for("alice")}
    )
    assert signed_in.status_code == 302
    assert not signed_in.cookies["sessionid"]["secure"]
    home = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert home.status_code == 200 and "Strict-Transport-Security" not in home
