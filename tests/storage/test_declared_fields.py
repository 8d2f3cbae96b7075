"""Backends declare their fields; the model, the admin form and the config parser obey them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from storage.backends import BACKENDS, SECRET_FIELDS, STORAGE_FIELDS, URL_FIELDS
from storage.config import ConfigError, parse_storage_section
from storage.forms import SecretInput, StorageConfigForm
from storage.models import StorageConfig

pytestmark = pytest.mark.usefixtures("secret_watch")


def test_every_declared_field_is_a_storage_config_field():
    model_fields = {field.name for field in StorageConfig._meta.get_fields()}
    for backend in BACKENDS.values():
        declared = (
            *backend.parameters,
            *backend.required_parameters,
            *backend.sensitive_parameters,
            *backend.url_parameters,
        )
        assert set(declared) <= model_fields
        assert set(declared) <= set(backend.parameters)
    assert set(SECRET_FIELDS) == {"access_key", "secret_key", "connection_string", "credential"}
    assert set(URL_FIELDS) == {"endpoint_url", "account_url"}


def test_the_form_hides_every_secret_and_says_which_type_uses_it():
    form = StorageConfigForm()
    assert set(STORAGE_FIELDS) <= set(form.fields)
    for name in SECRET_FIELDS:
        assert isinstance(form.fields[name].widget, SecretInput)
    assert form.fields["credential"].help_text.startswith("azure only.")
    assert form.fields["secret_key"].help_text.startswith("s3 only.")


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"type": "s3", "bucket": "b", "prefix": "/runs"}, "prefix", "absolute"),
        ({"type": "s3", "bucket": "b", "prefix": "a/../b"}, "prefix", ".."),
        ({"type": "gcs", "bucket": "b", "prefix": "a\\b"}, "prefix", "backslash"),
        ({"type": "shared_fs", "host_path": "/mnt/../etc"}, "host_path", ".."),
        (
            {"type": "shared_fs", "host_path": "/mnt", "storage_path": "/etc"},
            "storage_path",
            "host",
        ),
        ({"type": "s3", "bucket": "b", "endpoint_url": "minio:9000"}, "endpoint_url", "http"),
    ],
)
def test_the_model_and_the_config_refuse_alike(fields, field, words):
    """One rule: the admin's model validation and a config's storage section agree."""
    with pytest.raises(ValidationError) as model_error:
        StorageConfig(name="x", **fields).clean()
    assert words in model_error.value.message_dict[field][0]
    with pytest.raises(ConfigError) as config_error:
        parse_storage_section(fields)
    assert config_error.value.field == f"checkpoint_storage.{field}"
    assert words in config_error.value.message


def test_trailing_slashes_and_dotted_names_are_fine():
    StorageConfig(name="x", type="s3", bucket="b", prefix="team-a/ckpts/").clean()
    StorageConfig(name="x", type="shared_fs", host_path="/mnt", storage_path=".cache/ck").clean()
    assert parse_storage_section({"type": "shared_fs", "host_path": "/mnt//x/"}).fields == {
        "host_path": "/mnt/x"
    }


def test_the_determined_view_leaves_out_every_url_with_credentials():
    """detcompat reads the declaration too: a SAS query in ``account_url`` stays secret."""
    from types import SimpleNamespace

    from ckptweb.detcompat.translate import checkpoint_storage
    from ckptweb.lib.policy import DELETE_EVERYTHING, POLICY_FIELDS

    def section(**fields):
        storage = StorageConfig(name="x", **fields)
        found = checkpoint_storage(SimpleNamespace(storage=storage, gc_policy=DELETE_EVERYTHING))
        assert {name: found.pop(name) for name in POLICY_FIELDS} == DELETE_EVERYTHING.as_dict()
        return found

    sas = "https://acct.blob.core.windows.net/?sv=2024&sig=SECRETSIG"
    assert section(type="azure", container="c", account_url=sas, credential="k") == {
        "type": "azure",
        "container": "c",
    }
    assert section(type="s3", bucket="b", endpoint_url="http://AK:SK@minio:9000") == {
        "type": "s3",
        "bucket": "b",
    }
    assert section(type="s3", bucket="b", endpoint_url="http://minio:9000")["endpoint_url"]
