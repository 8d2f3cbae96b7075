"""The GC policy page: prefilled form, live preview against the spec table, apply rules."""

import re

import pytest
from django.urls import reverse

from experiments.models import Experiment, GCRun
from tests.spec import SPEC_POLICIES_TEXT as SPEC_POLICIES
from tests.spec import db_ids_text

pytestmark = pytest.mark.django_db


POLICY_FIELDS = ("save_experiment_best", "save_trial_best", "save_trial_latest")


def policy_params(values):
    return dict(zip(POLICY_FIELDS, values, strict=True))


def attr(html: str, name: str) -> str:
    match = re.search(rf'{name}="([^"]*)"', html)
    assert match, f"no {name}"
    return match.group(1)


@pytest.mark.parametrize(("policy", "saved"), SPEC_POLICIES)
def test_preview_matches_the_spec_table(alice_client, spec_example, spec_ids, policy, saved):
    url = reverse("experiments:gc-preview", args=[spec_example.pk])
    response = alice_client.get(url, policy_params(policy), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="gc-preview"' in html
    assert attr(html, "data-retained-ids") == db_ids_text(spec_ids, saved)
    kept_numbers = {int(n) for n in saved.split(",") if n}
    deleted_db = sorted((spec_ids[n] for n in range(1, 11) if n not in kept_numbers), reverse=True)
    assert attr(html, "data-deleted-ids") == ",".join(map(str, deleted_db))
    assert attr(html, "data-deleted-count") == str(len(deleted_db))
    assert html.count('class="row-delete"') == len(deleted_db)
    assert len(re.findall(r'class="marker marker-delete"', html)) == len(deleted_db)
    assert 'hx-swap-oob="innerHTML"' in html  # clears a previous error message


def test_page_is_prefilled_with_current_policy(alice_client, spec_example):
    Experiment.objects.filter(pk=spec_example.pk).update(
        save_experiment_best=2, save_trial_best=0, save_trial_latest=3
    )
    html = alice_client.get(reverse("experiments:gc", args=[spec_example.pk])).content.decode()
    for name, value in policy_params((2, 0, 3)).items():
        assert re.search(rf'name="{name}"[^>]*value="{value}"', html), name
    assert 'hx-trigger="input changed delay:200ms' in html
    assert 'id="gc-preview"' in html and 'id="gc-apply"' in html
    assert re.search(r"Delete 3 checkpoints \(\d", html), "the dialog states the deletion"


@pytest.mark.parametrize("bad", ["-1", "1.5", "two", ""])
def test_invalid_input_retargets_an_inline_message(alice_client, spec_example, bad):
    url = reverse("experiments:gc-preview", args=[spec_example.pk])
    params = {**policy_params((0, 1, 1)), "save_trial_best": bad}
    response = alice_client.get(url, params, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#gc-errors"
    html = response.content.decode()
    assert "save_trial_best" in html and 'id="gc-preview"' not in html

    plain = alice_client.get(url, params)
    assert plain.status_code == 400


def test_non_owner_sees_read_only_preview_and_cannot_apply(bob_client, spec_example):
    url = reverse("experiments:gc", args=[spec_example.pk])
    html = bob_client.get(url).content.decode()
    assert 'id="gc-readonly"' in html and 'id="gc-apply"' not in html
    assert 'id="gc-preview"' in html

    response = bob_client.post(url, policy_params((0, 0, 0)))
    assert response.status_code == 403
    spec_example.refresh_from_db()
    assert spec_example.save_trial_best is None
    assert not GCRun.objects.exists()


def test_owner_applies_a_policy(alice_client, spec_example, django_capture_on_commit_callbacks):
    url = reverse("experiments:gc", args=[spec_example.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice_client.post(url, policy_params((2, 1, 0)))
    assert response.status_code == 302 and response["Location"] == url
    assert len(callbacks) == 1, "the GC run is enqueued on commit"
    spec_example.refresh_from_db()
    assert spec_example.gc_policy.as_dict() == policy_params((2, 1, 0))
    run = GCRun.objects.get()
    assert run.policy == policy_params((2, 1, 0)) and run.reason == "POLICY_CHANGED"

    html = alice_client.get(url).content.decode()
    assert f'data-run="{run.pk}"' in html
    assert 'hx-trigger="every 1s"' in html  # polls while the run is pending


def test_staff_may_apply(staff, staff_client, spec_example, django_capture_on_commit_callbacks):
    url = reverse("experiments:gc", args=[spec_example.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(url, policy_params((0, 0, 1)))
    assert response.status_code == 302 and response["Location"] == url
    assert len(callbacks) == 1, "the GC run is enqueued on commit"
    spec_example.refresh_from_db()
    assert spec_example.gc_policy.as_dict() == policy_params((0, 0, 1))
    run = GCRun.objects.get()
    assert (run.experiment_id, run.reason, run.policy) == (
        spec_example.pk,
        "POLICY_CHANGED",
        policy_params((0, 0, 1)),
    )
    assert run.started_by == staff


def test_invalid_post_saves_nothing(alice_client, spec_example):
    url = reverse("experiments:gc", args=[spec_example.pk])
    response = alice_client.post(url, {**policy_params((0, 1, 1)), "save_trial_latest": "-2"})
    assert response.status_code == 400
    assert "save_trial_latest must be a non-negative integer" in response.content.decode()
    assert not GCRun.objects.exists()


def test_a_post_while_the_experiment_is_deleted_is_a_409_on_the_form(alice_client, spec_example):
    spec_example.state = "DELETING"
    spec_example.save(update_fields=["state"])
    url = reverse("experiments:gc", args=[spec_example.pk])
    response = alice_client.post(url, policy_params((0, 1, 1)))
    assert response.status_code == 409
    assert f"experiment {spec_example.pk} is being deleted." in response.content.decode()
    assert not GCRun.objects.exists()


def test_run_card_stops_polling_and_announces_the_end(alice_client, spec_example):
    from django.utils import timezone

    run = GCRun.objects.create(experiment=spec_example, reason="POLICY_CHANGED", total=4)
    url = reverse("experiments:gc-run-card", args=[run.pk])
    pending = alice_client.get(url, HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in pending.content.decode()
    assert "HX-Trigger" not in pending

    GCRun.objects.filter(pk=run.pk).update(
        state="SUCCEEDED", deleted=4, reclaimed_bytes=4096, finished_at=timezone.now()
    )
    done = alice_client.get(url, HTTP_HX_REQUEST="true")
    html = done.content.decode()
    assert done["HX-Trigger"] == "gc-finished"
    assert "every 1s" not in html and 'data-finished="true"' in html
    assert "4.0 KiB" in html
