"""The GC page's live preview does not ship every id: bounded HTML, same figures as the API."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experiments import views
from experiments.choices import CheckpointState
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
    monkeypatch.setattr(views, "PAGE_ID_LIMIT", 3)
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

    bulk_checkpoints(trial, rows(0, 100))
    params = policy_params((1, 0, 1))
    with CaptureQueriesContext(connection) as small:
        partial(alice_client, experiment, params)
    bulk_checkpoints(trial, rows(100, 4900))
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
