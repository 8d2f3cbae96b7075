"""The checkpoint page: files from storage, downloads, previews, formats, protection."""

from html import unescape

import pytest
from django.urls import reverse

from tests.experiments.pages.helpers import checkpoint_with_files, page

pytestmark = pytest.mark.django_db


def test_it_lists_files_downloads_and_a_pytorch_snippet(alice_client, spec_example):
    first_trial = spec_example.trials.order_by("id").first()
    checkpoint = spec_example.checkpoints.get(steps_completed=500, trial=first_trial)
    html = page(alice_client, checkpoint)
    assert "state-dict.pth" in html and "code/model_def.py" in html
    assert f"/api/v1/checkpoints/{checkpoint.uuid}/download?format=tar" in html
    assert f"/api/v1/checkpoints/{checkpoint.uuid}/download?format=zip" in html
    assert f"/api/v1/checkpoints/{checkpoint.uuid}/files/code/model_def.py" in html
    assert 'data-format="pytorch"' in html and "PyTorch state dict" in html
    assert "torch.load('ckpt-" in unescape(html) and "models_state_dict" in html
    assert "Authorization: Token $CKPTWEB_TOKEN" in html and "tar xf" in html
    assert "class Net(nn.Module)" in html  # text preview of model_def.py
    assert "validation_loss" in html and ">0.4000<" in html


def test_previews_and_metadata_are_escaped(alice_client, spec_example):
    checkpoint = checkpoint_with_files(
        spec_example, {"notes.txt": b"<script>alert(1)</script>", "model.bin": b"\0\1"}
    )
    html = page(alice_client, checkpoint)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'data-format="' not in html  # no known model format


@pytest.mark.parametrize(
    ("files", "fmt", "loader"),
    [
        ({"determined-keras-model.h5": b"HDF"}, "keras", "tf.keras.models.load_model("),
        (
            {"model/saved_model.pb": b"pb", "model/variables/variables.index": b"i"},
            "savedmodel",
            "tf.saved_model.load('ckpt-",
        ),
    ],
)
def test_it_detects_tensorflow_formats(alice_client, spec_example, files, fmt, loader):
    checkpoint = checkpoint_with_files(spec_example, files)
    html = page(alice_client, checkpoint)
    assert f'data-format="{fmt}"' in html
    snippet = unescape(html)
    assert loader in snippet
    if fmt == "savedmodel":
        assert "/model')" in snippet  # the SavedModel directory, not the .pb file


def test_deleted_checkpoint_has_no_downloads(alice_client, spec_example):
    checkpoint = spec_example.checkpoints.first()
    checkpoint.state = "DELETED"
    checkpoint.save()
    html = page(alice_client, checkpoint)
    assert "Files deleted" in html
    assert 'id="download-tar"' not in html
    assert "torch.load(" not in html


def test_owner_toggles_protection(alice_client, spec_example):
    checkpoint = spec_example.checkpoints.first()
    url = reverse("experiments:checkpoint-protect", args=[checkpoint.uuid])
    response = alice_client.post(url, {"protected": "1"})
    assert response.status_code == 302
    checkpoint.refresh_from_db()
    assert checkpoint.protected
    after = alice_client.get(response["Location"]).content.decode()
    assert ">Unprotect<" in after and "always kept" in after

    alice_client.post(url, {"protected": "0"})
    checkpoint.refresh_from_db()
    assert not checkpoint.protected


def test_others_cannot_protect(bob_client, spec_example):
    checkpoint = spec_example.checkpoints.first()
    html = page(bob_client, checkpoint)
    assert 'id="protect-toggle"' not in html
    url = reverse("experiments:checkpoint-protect", args=[checkpoint.uuid])
    assert bob_client.post(url, {"protected": "1"}).status_code == 403
    assert bob_client.get(url).status_code == 405
    checkpoint.refresh_from_db()
    assert not checkpoint.protected


def test_trial_page_shows_chart_hparams_and_checkpoints(alice_client, spec_example):
    trial = spec_example.trials.order_by("id").first()
    html = alice_client.get(reverse("experiments:trial", args=[trial.pk])).content.decode()
    assert 'id="hparams"' in html and "hidden_size" in html
    assert html.count('<tr data-id="') == 5
    assert html.count('class="series"') == 1
    assert "3 validations" in html
