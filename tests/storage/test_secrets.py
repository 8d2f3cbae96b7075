"""No response (headers or body) and no log line of the storage tests contains a secret.

Every storage and download test is watched by the ``secret_watch`` fixture (tests/
conftest.py), which fails it at teardown if a secret appeared. This module provokes the
riskiest cases itself, with storages whose client errors quote the credentials, so it
depends on no other module and no order.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.backends.azure import AzureBackend
from storage.backends.s3 import S3Backend
from tests.servers import ACCESS_KEY, SECRET_KEY
from tests.stores import consume, without_sigv4_key_ids

pytestmark = pytest.mark.usefixtures("secret_watch")


def leak_on_listing(monkeypatch, backend, error) -> None:
    """Make ``backend``'s listing fail with ``error(backend)``, as a buggy library might."""

    def leaky_list(self, checkpoint_uuid):
        with self.errors("listing"):
            raise error(self)

    monkeypatch.setattr(backend, "list_files", leaky_list)


@pytest.fixture
def leaky_s3(s3_store, monkeypatch):
    """An S3 storage whose client errors quote both secrets."""
    message = f"request signed by {ACCESS_KEY} with {SECRET_KEY} failed"
    leak_on_listing(monkeypatch, S3Backend, lambda backend: RuntimeError(message))
    return s3_store


@pytest.fixture
def leaky_azure(azure_store, monkeypatch):
    """An Azure storage whose SDK errors quote the whole connection string."""
    leak_on_listing(
        monkeypatch,
        AzureBackend,
        lambda backend: ValueError(f"bad request with {backend.config.connection_string}"),
    )
    return azure_store


def provoke(client, staff, alice_api, store, make_checkpoint, change: dict, more=False):
    """A failing download, then the admin pages of ``store``'s config: its change form, the
    "test connection" action and a change posted with ``change``; ``more`` adds a failing
    file read and the storage list."""
    checkpoint = make_checkpoint(store, {})
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download")
    assert response.status_code == 502
    assert "***" in response.json()["message"]
    if more:
        consume(alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/a.txt"))
    client.force_login(staff)
    config = store.config
    client.get(reverse("admin:storage_storageconfig_change", args=[config.pk]))
    if more:
        client.get(reverse("admin:storage_storageconfig_changelist"))
    client.post(
        reverse("admin:storage_storageconfig_changelist"),
        {"action": "test_connection", "_selected_action": [config.pk]},
        follow=True,
    )
    client.post(
        reverse("admin:storage_storageconfig_change", args=[config.pk]),
        {"name": config.name, **change},
    )


def test_presigned_urls_name_only_the_key_id(s3_store, make_checkpoint, alice_api):
    """A presigned URL has the key ID where SigV4 needs it, and never the secret key."""
    checkpoint = make_checkpoint(s3_store, {"a.bin": b"a"})
    body = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/urls").content
    assert ACCESS_KEY.encode() in body and SECRET_KEY.encode() not in body
    assert ACCESS_KEY.encode() not in without_sigv4_key_ids(body)
    assert without_sigv4_key_ids(b"key " + ACCESS_KEY.encode()) == b"key " + ACCESS_KEY.encode()


def test_no_response_or_log_line_contains_a_secret(
    client, staff, alice_api, leaky_s3, leaky_azure, make_checkpoint, secret_watch
):
    s3_change = {"type": "gcs", "bucket": "", "secret_key": SECRET_KEY}
    provoke(client, staff, alice_api, leaky_s3, make_checkpoint, s3_change, more=True)
    azure_change = {"type": "s3", "connection_string": leaky_azure.config.connection_string}
    provoke(client, staff, alice_api, leaky_azure, make_checkpoint, azure_change)
    responses = secret_watch.responses()
    assert len(responses) >= 10, "the recorder saw too few responses to mean anything"
    assert any("/admin/" in where for where in responses)
    assert any("/download" in where for where in responses)
    assert secret_watch.leaks() == []
