"""No response (headers or body) and no log line of the storage tests contains a secret.

Runs last in tests/storage (file name order): the autouse ``record_responses`` fixture has
recorded every response of the suite by then. It also provokes the riskiest cases itself,
so it is meaningful when run alone.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.backends.azure import AzureBackend
from storage.backends.s3 import S3Backend
from tests.storage import conftest
from tests.storage.conftest import ACCESS_KEY, SECRET_KEY, SECRETS, consume


@pytest.fixture
def leaky_s3(s3_store, monkeypatch):
    """An S3 storage whose client errors quote both secrets (as a buggy library might)."""

    def leaky_list(self, checkpoint_uuid):
        with self.errors("listing"):
            raise RuntimeError(f"request signed by {ACCESS_KEY} with {SECRET_KEY} failed")

    monkeypatch.setattr(S3Backend, "list_files", leaky_list)
    return s3_store


@pytest.fixture
def leaky_azure(azure_store, monkeypatch):
    """An Azure storage whose SDK errors quote the whole connection string."""

    def leaky_list(self, checkpoint_uuid):
        with self.errors("listing"):
            raise ValueError(f"bad request with {self.config.connection_string}")

    monkeypatch.setattr(AzureBackend, "list_files", leaky_list)
    return azure_store


def provoke_risky_azure(client, staff, alice_api, leaky_azure, make_checkpoint):
    checkpoint = make_checkpoint(leaky_azure, {})
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download")
    assert response.status_code == 502
    assert "***" in response.json()["message"]
    client.force_login(staff)
    config = leaky_azure.config
    client.get(reverse("admin:storage_storageconfig_change", args=[config.pk]))
    client.post(
        reverse("admin:storage_storageconfig_changelist"),
        {"action": "test_connection", "_selected_action": [config.pk]},
        follow=True,
    )
    client.post(
        reverse("admin:storage_storageconfig_change", args=[config.pk]),
        {"name": config.name, "type": "s3", "connection_string": config.connection_string},
    )


def provoke_risky_responses(client, staff, alice_api, leaky_s3, make_checkpoint):
    checkpoint = make_checkpoint(leaky_s3, {})
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download")
    assert response.status_code == 502
    assert "***" in response.json()["message"]
    consume(alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/a.txt"))

    client.force_login(staff)
    config = leaky_s3.config
    client.get(reverse("admin:storage_storageconfig_change", args=[config.pk]))
    client.get(reverse("admin:storage_storageconfig_changelist"))
    client.post(
        reverse("admin:storage_storageconfig_changelist"),
        {"action": "test_connection", "_selected_action": [config.pk]},
        follow=True,
    )
    client.post(
        reverse("admin:storage_storageconfig_change", args=[config.pk]),
        {"name": config.name, "type": "gcs", "bucket": "", "secret_key": SECRET_KEY},
    )


def without_sigv4_key_ids(text: bytes) -> bytes:
    """``text`` minus the access key *ID* where a presigned S3 URL must name it.

    SigV4 query signing puts the key ID in ``X-Amz-Credential=<id>/<date>/...`` of every
    presigned URL (AWS documents the ID as an identifier, not a secret); anywhere else the
    ID still counts as a leak, and the secret key counts everywhere.
    """
    for prefix in (b"X-Amz-Credential=", b"X-Amz-Credential%3D"):
        for slash in (b"%2F", b"/"):
            text = text.replace(prefix + ACCESS_KEY.encode() + slash, prefix + b"<id>" + slash)
    return text


def test_presigned_urls_name_only_the_key_id(s3_store, make_checkpoint, alice_api):
    """A presigned URL has the key ID where SigV4 needs it, and never the secret key."""
    checkpoint = make_checkpoint(s3_store, {"a.bin": b"a"})
    body = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/urls").content
    assert ACCESS_KEY.encode() in body and SECRET_KEY.encode() not in body
    assert ACCESS_KEY.encode() not in without_sigv4_key_ids(body)
    assert without_sigv4_key_ids(b"key " + ACCESS_KEY.encode()) == b"key " + ACCESS_KEY.encode()


def test_no_response_or_log_line_contains_a_secret(
    client, staff, alice_api, leaky_s3, leaky_azure, make_checkpoint
):
    provoke_risky_responses(client, staff, alice_api, leaky_s3, make_checkpoint)
    provoke_risky_azure(client, staff, alice_api, leaky_azure, make_checkpoint)
    recorded = list(conftest.RECORDED)
    responses = [where for where, _text in recorded if " -> " in where]
    assert len(responses) >= 10, "the recorder saw too few responses to mean anything"
    assert any("/admin/" in where for where in responses)
    assert any("/download" in where for where in responses)
    leaks = [
        where
        for where, text in recorded
        for secret in SECRETS
        if secret.encode() in without_sigv4_key_ids(text)
    ]
    assert leaks == [], leaks
    assert conftest.LEAKS == []
