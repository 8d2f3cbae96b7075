"""The storage page: staff only, locations and usage, never secrets."""

import pytest
from django.urls import reverse

from storage.models import StorageConfig

pytestmark = pytest.mark.django_db


def test_it_is_staff_only(alice_client, spec_example):
    assert alice_client.get(reverse("storage:list")).status_code == 403


def test_it_shows_locations_usage_and_no_secrets(staff_client, spec_example):
    StorageConfig.objects.create(
        name="s3-main",
        type="s3",
        bucket="ckpts",
        prefix="team",
        access_key="AKIASECRETKEY",
        secret_key="very-secret-key",
    )
    html = staff_client.get(reverse("storage:list")).content.decode()
    assert "AKIASECRETKEY" not in html and "very-secret-key" not in html
    assert "s3://ckpts/team" in html
    assert spec_example.storage.location in html
    assert ">spec-example<" in html
    assert ">10<" in html  # live checkpoints on the default storage
    assert "No experiment uses this storage." in html
