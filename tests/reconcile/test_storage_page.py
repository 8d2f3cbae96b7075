"""The storage page: staff only, locations and usage, never secrets."""

import pytest
from django.urls import reverse

from tests.factories import s3_storage

pytestmark = pytest.mark.django_db


def test_it_is_staff_only(alice_client, spec_example):
    assert alice_client.get(reverse("storage:list")).status_code == 403


def test_it_shows_locations_usage_and_no_secrets(staff_client, spec_example):
    s3 = s3_storage("s3-main", bucket="ckpts", prefix="team", endpoint_url="")
    html = staff_client.get(reverse("storage:list")).content.decode()
    assert s3.access_key not in html and s3.secret_key not in html
    assert "s3://ckpts/team" in html
    assert spec_example.storage.location in html
    assert ">spec-example<" in html
    assert ">10<" in html  # live checkpoints on the default storage
    assert "No experiment uses this storage." in html
