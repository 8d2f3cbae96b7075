"""The checkpoint page's "Delete files…" action: htmx preview of matches, then POST."""

import pytest
from django.urls import reverse

from experiments.choices import CheckpointState
from experiments.models import Checkpoint
from tests.experiments.pages.helpers import checkpoint_with_files, page

pytestmark = pytest.mark.django_db

FILES = {"model.pth": b"m" * 2048, "code/a.py": b"a" * 10, "code/sub/b.py": b"b" * 20}


def preview(client, checkpoint, globs: str):
    url = reverse("experiments:checkpoint-rm-preview", args=[checkpoint.uuid])
    return client.get(url, {"globs": globs}, HTTP_HX_REQUEST="true")


def test_owner_sees_the_form_and_others_do_not(alice_client, bob_client, spec_example):
    checkpoint = checkpoint_with_files(spec_example, FILES)
    html = page(alice_client, checkpoint)
    assert 'id="rm-form"' in html and 'name="globs"' in html
    assert reverse("experiments:checkpoint-rm-preview", args=[checkpoint.uuid]) in html
    assert 'id="rm-form"' not in page(bob_client, checkpoint)
    Checkpoint.objects.filter(pk=checkpoint.pk).update(protected=True)
    assert 'id="rm-form"' not in page(alice_client, checkpoint)


def test_preview_lists_matching_files_and_bytes(alice_client, spec_example):
    checkpoint = checkpoint_with_files(spec_example, FILES)
    html = preview(alice_client, checkpoint, "code/**\n\n").content.decode()
    assert 'data-files="2"' in html and 'data-bytes="30"' in html
    assert "code/a.py" in html and "code/sub/b.py" in html and "model.pth" not in html
    bad = preview(alice_client, checkpoint, "../x").content.decode()
    assert 'data-field="globs"' in bad and "&#x27;..&#x27;" in bad
    none = preview(alice_client, checkpoint, "*.nothing").content.decode()
    assert 'data-files="0"' in none and "No file matches" in none


def test_preview_and_post_are_owner_only(bob_client, spec_example):
    checkpoint = checkpoint_with_files(spec_example, FILES)
    assert preview(bob_client, checkpoint, "*").status_code == 403
    url = reverse("experiments:checkpoint-rm", args=[checkpoint.uuid])
    assert bob_client.post(url, {"globs": "*"}).status_code == 403
    checkpoint.refresh_from_db()
    assert checkpoint.state == CheckpointState.COMPLETED


def test_post_deletes_the_files_and_the_page_shows_the_rest(
    alice_client, spec_example, django_capture_on_commit_callbacks
):
    checkpoint = checkpoint_with_files(spec_example, FILES)
    url = reverse("experiments:checkpoint-rm", args=[checkpoint.uuid])
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url, {"globs": "code/**"}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Deleting files: GC run" in html
    checkpoint.refresh_from_db()
    assert checkpoint.state == CheckpointState.PARTIALLY_DELETED
    assert checkpoint.resources == {"model.pth": 2048}
    assert "code/a.py" not in page(alice_client, checkpoint)


def test_post_with_bad_globs_shows_the_message(alice_client, spec_example):
    checkpoint = checkpoint_with_files(spec_example, FILES)
    url = reverse("experiments:checkpoint-rm", args=[checkpoint.uuid])
    html = alice_client.post(url, {"globs": "/etc/passwd"}, follow=True).content.decode()
    assert "absolute" in html
    checkpoint.refresh_from_db()
    assert checkpoint.resources == {p: len(c) for p, c in FILES.items()}
