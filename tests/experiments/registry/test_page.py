"""Registry pages: /models/, /models/{name}/, registering from the checkpoint page, badges."""

import pytest
from django.urls import reverse

from experiments import registry
from experiments.models import Checkpoint, ModelVersion

pytestmark = pytest.mark.django_db


def register(client, checkpoint, model: str, **fields):
    """POST the checkpoint page's "Register as model version" form; the page it lands on."""
    url = reverse("experiments:checkpoint-register", args=[checkpoint.uuid])
    return client.post(url, {"model": model, **fields}, follow=True)


@pytest.fixture
def registered(alice, spec_example, spec_ids):
    model = registry.create_model(alice, "resnet-prod", "prod model", ["vision"])
    checkpoint = Checkpoint.objects.get(pk=spec_ids[9])
    registry.register_version(model, checkpoint, alice, "first")
    return model, checkpoint


def test_the_nav_links_to_models(alice_client):
    html = alice_client.get(reverse("experiments:list")).content.decode()
    assert f'href="{reverse("experiments:models")}"' in html
    page = alice_client.get(reverse("experiments:models")).content.decode()
    assert 'aria-current="page">Models</a>' in page


def test_the_list_shows_latest_version_and_metric(alice_client, registered, alice, spec_ids):
    model, _ = registered
    best = Checkpoint.objects.get(pk=spec_ids[7])
    registry.register_version(model, best, alice)
    registry.create_model(alice, "bert", "language", ["nlp"])
    html = alice_client.get(reverse("experiments:models")).content.decode()
    assert 'data-model="resnet-prod"' in html and 'data-model="bert"' in html
    assert "v2" in html and str(best.uuid)[:8] in html
    assert f"{best.validation_metric:g}"[:4] in html
    searched = alice_client.get(reverse("experiments:models"), {"search": "language"})
    assert 'data-model="bert"' in searched.content.decode()
    assert 'data-model="resnet-prod"' not in searched.content.decode()
    labelled = alice_client.get(reverse("experiments:models"), {"label": "vision"}).content
    assert b'data-model="resnet-prod"' in labelled and b'data-model="bert"' not in labelled


def test_the_model_page_lists_versions_downloads_and_a_snippet(alice_client, registered):
    model, checkpoint = registered
    html = alice_client.get(reverse("experiments:model", args=["resnet-prod"])).content.decode()
    assert f'data-checkpoint="{checkpoint.uuid}"' in html
    assert "/api/v1/models/resnet-prod/versions/1/download?format=tar" in html
    assert 'id="load-snippet"' in html
    assert "torch.load" in html
    assert "first" in html and "alice" in html


def test_an_unknown_model_is_404(alice_client):
    assert alice_client.get(reverse("experiments:model", args=["nope"])).status_code == 404


def test_registering_from_the_checkpoint_page(alice_client, spec_example, spec_ids):
    checkpoint = Checkpoint.objects.get(pk=spec_ids[4])
    url = reverse("experiments:checkpoint", args=[checkpoint.uuid])
    page = alice_client.get(url).content.decode()
    assert "Register as model version…" in page
    response = register(alice_client, checkpoint, "resnet-prod", comment="from the page")
    html = response.content.decode()
    assert "Registered as resnet-prod v1" in html
    assert "registered-badge" in html
    version = ModelVersion.objects.get()
    assert (version.checkpoint_id, version.comment) == (checkpoint.pk, "from the page")


def test_a_bad_name_is_a_message_not_a_500(alice_client, spec_example, spec_ids):
    checkpoint = Checkpoint.objects.get(pk=spec_ids[4])
    response = register(alice_client, checkpoint, "bad name!")
    assert response.status_code == 200
    assert "Not registered: name may contain only" in response.content.decode()
    assert not ModelVersion.objects.exists()


def test_others_cannot_register_into_alices_model(bob_client, registered, spec_ids):
    checkpoint = Checkpoint.objects.get(pk=spec_ids[4])
    response = register(bob_client, checkpoint, "resnet-prod")
    assert "Only the owner of resnet-prod" in response.content.decode()
    assert ModelVersion.objects.count() == 1


def test_badges_in_tables_and_the_gc_preview(alice_client, registered, spec_example):
    _, checkpoint = registered
    detail = alice_client.get(reverse("experiments:detail", args=[spec_example.pk]))
    row = detail.content.decode().split(f'data-id="{checkpoint.pk}"')[1].split("</tr>")[0]
    assert "registered-badge" in row
    gc = alice_client.get(
        reverse("experiments:gc", args=[spec_example.pk]),
        {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 0},
    ).content.decode()
    assert f'data-retained-ids="{checkpoint.pk}"' in gc
    row = gc.split(f'data-id="{checkpoint.pk}"')[1].split("</tr>")[0]
    assert "registered as resnet-prod v1" in row
    trial = alice_client.get(reverse("experiments:trial", args=[checkpoint.trial_id]))
    assert "registered-badge" in trial.content.decode()


@pytest.mark.parametrize("query", [{"search": "a\x00b"}, {"label": "x\x00"}, {"page": "zz"}])
def test_bad_filters_do_not_break_the_list(alice_client, registered, query):
    assert alice_client.get(reverse("experiments:models"), query).status_code == 200
