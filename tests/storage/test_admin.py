"""StorageConfig admin: per-type validation, write-only secrets, one default, test action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.backends import SECRET_FIELDS, STORAGE_FIELDS
from storage.models import StorageConfig
from tests.servers import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.usefixtures("secret_watch")


@pytest.fixture
def s3_config(default_storage):
    return StorageConfig.objects.create(
        name="models",
        type="s3",
        bucket="models",
        endpoint_url="http://127.0.0.1:9",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


def form_data(config: StorageConfig, **overrides) -> dict:
    """What the change form posts for ``config``: its values, secret boxes left empty."""
    policy = ("save_experiment_best", "save_trial_best", "save_trial_latest")
    data = {name: getattr(config, name) for name in ("name", "type", *STORAGE_FIELDS, *policy)}
    data.update(dict.fromkeys(SECRET_FIELDS, ""))
    if config.is_default:
        data["is_default"] = "on"
    data.update(overrides)
    return data


def change_url(config) -> str:
    return reverse("admin:storage_storageconfig_change", args=[config.pk])


def test_change_form_never_renders_secrets(staff_client, s3_config):
    response = staff_client.get(change_url(s3_config))
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET_KEY not in html and ACCESS_KEY not in html
    assert "Currently: set" in html
    listing = staff_client.get(reverse("admin:storage_storageconfig_changelist"))
    assert SECRET_KEY not in listing.content.decode()


def test_blank_secret_keeps_the_stored_value(staff_client, s3_config):
    response = staff_client.post(change_url(s3_config), form_data(s3_config, prefix="v2"))
    assert response.status_code == 302, response.content.decode()[:2000]
    s3_config.refresh_from_db()
    assert s3_config.prefix == "v2"
    assert s3_config.secret_key == SECRET_KEY
    assert s3_config.access_key == ACCESS_KEY


def test_new_secret_replaces_and_clear_removes(staff_client, s3_config):
    staff_client.post(change_url(s3_config), form_data(s3_config, secret_key="new-secret-value"))
    s3_config.refresh_from_db()
    assert s3_config.secret_key == "new-secret-value"
    staff_client.post(
        change_url(s3_config), form_data(s3_config, clear_access_key="on", clear_secret_key="on")
    )
    s3_config.refresh_from_db()
    assert s3_config.secret_key == "" and s3_config.access_key == ""


def test_per_type_validation(staff_client, default_storage):
    data = form_data(default_storage, name="bad", type="gcs", bucket="", host_path="/x")
    data.pop("is_default", None)
    response = staff_client.post(reverse("admin:storage_storageconfig_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "bucket" in errors and "host_path" in errors
    assert not StorageConfig.objects.filter(name="bad").exists()


def test_secrets_are_rejected_for_gcs(staff_client, default_storage):
    data = form_data(default_storage, name="g", type="gcs", bucket="b", host_path="")
    data.update(secret_key="some-secret")
    data.pop("is_default", None)
    response = staff_client.post(reverse("admin:storage_storageconfig_add"), data)
    assert response.status_code == 200
    assert "secret_key" in response.context["adminform"].form.errors
    assert "some-secret" not in response.content.decode()


def test_new_default_unsets_the_old_one(staff_client, default_storage, s3_config):
    response = staff_client.post(change_url(s3_config), form_data(s3_config, is_default="on"))
    assert response.status_code == 302
    assert list(StorageConfig.objects.filter(is_default=True)) == [s3_config]


def test_the_default_cannot_be_unset_or_deleted(staff_client, default_storage):
    data = form_data(default_storage)
    data.pop("is_default")
    response = staff_client.post(change_url(default_storage), data)
    assert response.status_code == 200
    assert "is_default" in response.context["adminform"].form.errors
    delete = reverse("admin:storage_storageconfig_delete", args=[default_storage.pk])
    assert staff_client.get(delete).status_code == 403


def run_test_connection(staff_client, *configs):
    return staff_client.post(
        reverse("admin:storage_storageconfig_changelist"),
        {"action": "test_connection", "_selected_action": [c.pk for c in configs]},
        follow=True,
    )


def test_test_connection_action_reports_success(staff_client, default_storage):
    response = run_test_connection(staff_client, default_storage)
    messages = [str(m) for m in response.context["messages"]]
    assert any("connected to" in m for m in messages), messages


def test_test_connection_action_reports_errors_without_secrets(staff_client, s3_config):
    response = run_test_connection(staff_client, s3_config)
    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert messages and messages[0][0] == "error", messages
    assert "models" in messages[0][1]
    html = response.content.decode()
    assert SECRET_KEY not in html and ACCESS_KEY not in html


def test_test_connection_against_real_s3(staff_client, s3_store):
    response = run_test_connection(staff_client, s3_store.config)
    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert messages[0][0] == "success", messages
