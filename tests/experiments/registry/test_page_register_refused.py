"""A registration the page refuses leaves no model behind (issue 25, item 13).

Registering a checkpoint that cannot be registered (here: already deleted) under a new
model name created the model anyway, empty, and its name was taken.
"""

import pytest
from django.urls import reverse

from experiments.choices import CheckpointState
from experiments.models import Checkpoint, Model
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_refused_registration_creates_no_model(alice_client, trial):
    (checkpoint,) = factories.add_checkpoints(trial, [(100, 0.5)])
    Checkpoint.objects.filter(pk=checkpoint.pk).update(state=CheckpointState.DELETED)
    page = alice_client.post(
        reverse("experiments:checkpoint-register", args=[checkpoint.uuid]),
        {"model": "brand-new"},
        follow=True,
    )
    assert "Not registered" in page.content.decode()
    assert not Model.objects.filter(name="brand-new").exists()


def test_an_accepted_registration_creates_the_model_and_version(alice_client, trial):
    (checkpoint,) = factories.add_checkpoints(trial, [(100, 0.5)])
    alice_client.post(
        reverse("experiments:checkpoint-register", args=[checkpoint.uuid]), {"model": "fresh"}
    )
    model = Model.objects.get(name="fresh")
    assert [v.checkpoint_id for v in model.versions.all()] == [checkpoint.pk]
