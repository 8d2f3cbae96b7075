"""The GC page's live preview does not ship every id: bounded HTML, same figures as the API."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experiments import summary
from experiments.choices import CheckpointState
from experiments.models import GCRun
from experiments.views import gc as gc_pages
from tests.factories import bulk_checkpoints
from tests.spec import SPEC_POLICIES_TEXT as SPEC_POLICIES

pytestmark = pytest.mark.django_db

POLICY_FIELDS = ("save_experiment_best", "save_trial_best", "save_trial_latest")


def policy_params(values):
    return dict(zip(POLICY_FIELDS, values, strict=True))


def attr(html: str, name: str) -> str | None:
    match = re.search(rf'{name}="([^"]*)"', html)
    return match.group(1) if match else None


def partial(client, experiment, params) -> str:
    url = reverse("experiments:gc-preview", args=[experiment.pk])
    response = client.get(url, params, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def shown_ids(html: str, element: str) -> list[int]:
    text = re.search(rf'id="{element}">([^<]*)<', html).group(1)
    return [int(n) for n in re.findall(r"\d+", text.split("…")[0])]


@pytest.mark.parametrize(("policy", "saved"), SPEC_POLICIES)
def test_a_cut_preview_shows_the_apis_counts_bytes_and_first_ids(
    alice_client, spec_example, monkeypatch, policy, saved
):
    monkeypatch.setattr(gc_pages, "PAGE_ID_LIMIT", 3)
    html = partial(alice_client, spec_example, policy_params(policy))
    api = alice_client.get(attr(html, "data-ids-url").replace("&amp;", "&")).json()
    assert attr(html, "data-retained-count") == str(len(api["retained_ids"]))
    assert attr(html, "data-deleted-count") == str(len(api["deleted_ids"]))
    assert attr(html, "data-reclaimed-bytes") == str(api["reclaimed_bytes"])
    for key, element in (("retained_ids", "gc-retained-ids"), ("deleted_ids", "gc-deleted-ids")):
        inline = attr(html, f"data-{key.replace('_', '-')}")
        if len(api[key]) <= 3:
            assert inline == ",".join(map(str, api[key]))
        else:  # too long to inline: "Copy all" fetches the whole list from data-ids-url
            assert inline is None
            assert shown_ids(html, element) == api[key][:3]
            assert f'data-copy-key="{key}"' in html


def test_the_preview_of_many_checkpoints_is_small_and_its_query_count_flat(
    alice_client, experiment, trial
):
    def rows(start, n):
        state = CheckpointState.COMPLETED
        return [(start + i, float(i % 97), state, False, 1000 + start + i) for i in range(n)]

    # The rows are bulk-created behind the services' back: their summary row (the page's
    # counts and bytes) is rebuilt after each, as ``manage.py rebuild_summaries`` would.
    bulk_checkpoints(trial, rows(0, 100))
    summary.refresh(experiment)
    params = policy_params((1, 0, 1))
    with CaptureQueriesContext(connection) as small:
        partial(alice_client, experiment, params)
    bulk_checkpoints(trial, rows(100, 4900))
    summary.refresh(experiment)
    with CaptureQueriesContext(connection) as large:
        html = partial(alice_client, experiment, params)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert attr(html, "data-deleted-count") == "4998" and attr(html, "data-retained-count") == "2"
    assert attr(html, "data-deleted-ids") is None  # 4998 ids are fetched only when copied
    assert attr(html, "data-retained-ids") is not None
    kept = {int(n) for n in attr(html, "data-retained-ids").split(",")}
    total = sum(1000 + i for i in range(5000))
    assert attr(html, "data-reclaimed-bytes") == str(total - sum(1000 + s for s in _steps_of(kept)))
    opening = html[: html.index(">")]  # the data-* attributes: bounded, whatever the size
    assert len(opening) < 2000, len(opening)


def _steps_of(ids):
    from experiments.models import Checkpoint

    return Checkpoint.objects.filter(pk__in=ids).values_list("steps_completed", flat=True)


def fingerprint_shown(client, experiment, values) -> str:
    html = partial(client, experiment, policy_params(values))
    match = re.search(r'name="preview_fingerprint" form="gc-form" value="([0-9a-f]+)"', html)
    assert match, "the preview posts its fingerprint with the form"
    return match.group(1)


def test_applying_the_preview_just_shown_saves_the_policy(
    alice_client, spec_example, django_capture_on_commit_callbacks
):
    shown = fingerprint_shown(alice_client, spec_example, (2, 1, 0))
    url = reverse("experiments:gc", args=[spec_example.pk])
    with django_capture_on_commit_callbacks(execute=False):
        response = alice_client.post(
            url, {**policy_params((2, 1, 0)), "preview_fingerprint": shown}
        )
    assert response.status_code == 302 and response["Location"] == url
    assert GCRun.objects.filter(experiment=spec_example).count() == 1


@pytest.mark.parametrize("change", ["unprotect", "new_checkpoint", "other_policy"])
def test_a_stale_preview_deletes_nothing_and_shows_the_fresh_one(
    alice_client, spec_example, spec_ids, change
):
    from experiments import services
    from experiments.models import Checkpoint

    Checkpoint.objects.filter(pk=spec_ids[3]).update(protected=True)
    shown = fingerprint_shown(alice_client, spec_example, (1, 0, 1))
    posted = (1, 0, 1)
    if change == "unprotect":  # the user saw it kept; now the policy would delete it
        Checkpoint.objects.filter(pk=spec_ids[3]).update(protected=False)
    elif change == "new_checkpoint":
        trial = spec_example.trials.order_by("id").first()
        services.report_checkpoint(trial, 10_000, resources={"late.pth": 5})
    else:  # the form's values changed after the preview answered
        posted = (0, 0, 1)
    url = reverse("experiments:gc", args=[spec_example.pk])
    before = spec_example.gc_policy.as_dict()
    response = alice_client.post(url, {**policy_params(posted), "preview_fingerprint": shown})
    assert response.status_code == 302
    assert not GCRun.objects.filter(experiment=spec_example).exists()
    spec_example.refresh_from_db()
    assert spec_example.gc_policy.as_dict() == before  # nothing saved
    html = alice_client.get(response["Location"]).content.decode()
    assert "changed since the preview" in html
    assert f'value="{posted[0]}"' in html and "Apply policy" in html
