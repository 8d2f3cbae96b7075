"""Nobody can make another user's checkpoint undeletable by registering it (issue 25, item 12).

bob registered alice's checkpoint in his model, and alice could then neither delete it, rm
it, nor delete her experiment. The owner of the pinned checkpoint's experiment (and staff)
may now delete that version; a deleted model's name stays its owner's, so ``squat v1`` never
comes to mean another user's checkpoint, and version numbers go on after a re-creation.
"""

import pytest
from django.contrib.auth import get_user_model

from experiments import registry
from experiments.models import Checkpoint, Model, ModelVersion, RetiredModelName
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices(trial):
    (checkpoint,) = factories.add_checkpoints(trial, [(100, 0.5)])
    return checkpoint


@pytest.fixture
def squat(bob, alices):
    """bob's model pinning alice's checkpoint as v1."""
    model = registry.create_model(bob, "squat")
    registry.register_version(model, alices, bob)
    return model


def version_url(model, number=1):
    return f"/api/v1/models/{model.name}/versions/{number}"


def test_the_checkpoints_owner_may_release_the_pin_and_then_delete_it(alice_api, squat, alices):
    refused = alice_api.delete(f"/api/v1/checkpoints/{alices.uuid}")
    assert refused.status_code == 409
    assert "squat v1" in refused.json()["detail"]
    assert alice_api.delete(version_url(squat)).status_code == 204
    assert not ModelVersion.objects.filter(model=squat).exists()
    deleted = alice_api.delete(f"/api/v1/checkpoints/{alices.uuid}")
    assert deleted.status_code == 202, deleted.content


def test_a_third_user_may_not_release_it(squat, alices):
    carol = get_user_model().objects.create_user("carol", password="x")
    response = factories.client_for(carol, api=True).delete(version_url(squat))
    assert response.status_code == 403
    assert "pinned checkpoint's experiment" in response.json()["detail"]
    assert ModelVersion.objects.filter(model=squat, version=1).exists()


def test_a_deleted_models_name_stays_its_owners(alice_api, bob, squat, alices):
    bob_api = factories.client_for(bob, api=True)
    assert bob_api.delete(f"/api/v1/models/{squat.name}").status_code == 204
    taken = alice_api.post("/api/v1/models", {"name": "squat"}, format="json")
    assert taken.status_code == 409
    assert "another user's deleted model" in str(taken.json())
    again = bob_api.post("/api/v1/models", {"name": "squat"}, format="json")
    assert again.status_code == 201
    version = registry.register_version(Model.objects.get(name="squat"), alices, bob)
    assert version.version == 2  # v1 once meant something else; it is never given again
    assert RetiredModelName.objects.filter(name="squat", owner=bob).exists()
    assert Checkpoint.objects.filter(pk=alices.pk).exists()
