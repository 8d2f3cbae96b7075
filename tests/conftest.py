"""Shared fixtures: personas, API clients, storage under tmp_path, service gating."""

import os

import pytest
from rest_framework.test import APIClient

REQUIRE_SERVICES = os.environ.get("CKPTWEB_REQUIRE_SERVICES") == "1"


def missing_service(reason: str):
    """Skip with ``reason``, or fail when CI demands real services (CKPTWEB_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (CKPTWEB_REQUIRE_SERVICES=1, so this is a failure)")
    pytest.skip(reason)


@pytest.fixture
def alice(django_user_model):
    """The owner of the experiments in a test."""
    return django_user_model.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def bob(django_user_model):
    """Another signed-in user: may read, must not change alice's experiments."""
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture
def staff(django_user_model):
    """A staff member: may change anything and manage storage."""
    return django_user_model.objects.create_user(
        "staff", password="staff-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def api():
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def alice_api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def bob_api(bob):
    client = APIClient()
    client.force_authenticate(bob)
    return client


@pytest.fixture
def staff_api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def default_storage(db, tmp_path):
    """The default StorageConfig: shared_fs under this test's tmp_path."""
    from storage.models import StorageConfig

    root = tmp_path / "checkpoints"
    root.mkdir()
    return StorageConfig.objects.create(
        name="default", type="shared_fs", host_path=str(root), is_default=True
    )


# The S3, GCS and Azure test servers, one per session for every package (see tests/servers.py).
from tests.servers import azurite_server, gcs_server, moto_server  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 costs ~0.5 s a user on this machine; tests need no slow hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
