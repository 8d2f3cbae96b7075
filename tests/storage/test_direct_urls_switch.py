"""A storage's admin can turn direct URLs off (issue 25, item 11).

An S3 presigned URL names the access key ID; a storage whose admin does not want that handed
out (or wants every byte to pass through ckptweb) has ``direct_urls`` off, and then neither
the manifest nor the single-file redirect signs anything: a 409 before any request to the
store (its endpoint here refuses connections, so a request would be a 502/503).
"""

import pytest

from experiments import services
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpoint(alice):
    storage = factories.s3_storage("no-direct", direct_urls=False)
    trial = services.create_trial(factories.make_experiment(alice, storage), {})
    return services.report_checkpoint(trial, 100, resources={"weights.bin": 8})


def test_the_manifest_is_refused(alice_api, checkpoint):
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/urls")
    assert response.status_code == 409
    body = response.json()
    assert "does not hand out direct URLs" in str(body)
    assert "AKIA" not in str(body)


def test_the_single_file_redirect_is_refused(alice_api, checkpoint):
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/weights.bin?redirect=1")
    assert response.status_code == 409
    assert "does not hand out direct URLs" in str(response.json())


def test_with_the_switch_on_the_store_is_asked(alice_api, alice):
    """The same storage with direct URLs on (the default) signs, then lists the store, which
    refuses the connection: the 409 above came from the switch, not from S3."""
    storage = factories.s3_storage("direct")
    assert storage.direct_urls is True
    trial = services.create_trial(factories.make_experiment(alice, storage), {})
    checkpoint = services.report_checkpoint(trial, 100, resources={"weights.bin": 8})
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/urls")
    assert response.status_code in (502, 503)
