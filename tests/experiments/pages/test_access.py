"""Every page needs a signed-in user; the login page is styled and works."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def page_urls(spec_example):
    checkpoint = spec_example.checkpoints.first()
    run_free = [
        reverse("experiments:list"),
        reverse("experiments:detail", args=[spec_example.pk]),
        reverse("experiments:gc", args=[spec_example.pk]),
        reverse("experiments:gc-preview", args=[spec_example.pk]),
        reverse("experiments:trial", args=[checkpoint.trial_id]),
        reverse("experiments:checkpoint", args=[checkpoint.uuid]),
        reverse("storage:list"),
    ]
    return run_free


def test_it_redirects_anonymous_users_to_login(client, spec_example):
    for url in page_urls(spec_example):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_login_page_is_styled_and_signs_in(client, alice):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/css/ckptweb.css" in html
    assert 'name="username"' in html and 'name="password"' in html

    wrong = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert "didn't match" in wrong.content.decode()

    ok = client.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123"})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200


def test_pages_load_only_vendored_assets(alice_client, spec_example):
    html = alice_client.get(reverse("experiments:gc", args=[spec_example.pk])).content.decode()
    assert "/static/js/htmx.min.js" in html
    assert "https://" not in html.split("<body")[0], "no CDN assets in <head>"


def test_vendored_htmx_is_served(alice_client):
    from django.contrib.staticfiles import finders

    path = finders.find("js/htmx.min.js")
    assert path, "static/js/htmx.min.js is missing"
    with open(path) as handle:
        assert "htmx" in handle.read(200)
