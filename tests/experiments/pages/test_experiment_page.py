"""The experiment page: summary, trials, checkpoint table, chart; queries do not grow."""

import re

import pytest
from django.urls import reverse

from experiments import services, summary
from experiments.charts import data
from experiments.models import Checkpoint, GCRun, Validation
from experiments.views import gc as gc_pages

pytestmark = pytest.mark.django_db

#: Queries of one experiment page, whatever the number of checkpoints: session, user,
#: experiment (with its trial count and its summary row, whose counts also count the
#: table), checkpoint page, the chart's metrics, chart lines (validation count + sampled
#: lines), sampled markers, the retained set of the shown checkpoints' trials (with the
#: kept markers' rows), the page's model versions ("registered" badges), GC history (whose
#: first row is the latest run), trials, the best checkpoint (#download-best), the
#: checkpoints that need attention (ERROR rows only, through the partial state index). The
#: counts of the whole retained set are a fragment loaded after the page (``gc-counts``).
EXPERIMENT_PAGE_QUERIES = 14


def big_experiment(owner, checkpoints: int, trials: int = 4):
    """An experiment with ``checkpoints`` checkpoints (bulk-created) and their validations."""
    experiment = services.create_experiment(
        owner, {"name": f"big-{checkpoints}", "searcher": {"metric": "loss"}}
    )
    trial_rows = [services.create_trial(experiment, {"lr": 0.1 * i}) for i in range(trials)]
    per_trial = checkpoints // trials
    rows, validations = [], []
    for trial in trial_rows:
        for step in range(1, per_trial + 1):
            metric = 1.0 / step + trial.pk * 0.01
            rows.append(
                Checkpoint(
                    experiment_id=experiment.pk,
                    trial=trial,
                    steps_completed=step * 10,
                    validation_metric=metric,
                    size_bytes=1024,
                    resources={"w.bin": 1024},
                )
            )
            validations.append(
                Validation(trial=trial, steps_completed=step * 10, metrics={"loss": metric})
            )
    Checkpoint.objects.bulk_create(rows, batch_size=2000)
    Validation.objects.bulk_create(validations, batch_size=2000)
    summary.refresh(experiment)  # the rows were bulk-created behind the services' back
    return experiment


@pytest.mark.parametrize("checkpoints", [100, 10_000])
def test_query_count_does_not_grow(
    alice_client, alice, default_storage, django_assert_num_queries, checkpoints
):
    experiment = big_experiment(alice, checkpoints)
    GCRun.objects.create(experiment=experiment, reason="POLICY_CHANGED", state="SUCCEEDED")
    url = reverse("experiments:detail", args=[experiment.pk])
    with django_assert_num_queries(EXPERIMENT_PAGE_QUERIES):
        response = alice_client.get(url, {"ordering": "-validation_metric"})
    assert response.status_code == 200
    html = response.content.decode()
    assert f"of {checkpoints}" in html  # paginated, with the total
    assert html.count('<tr data-id="') == 50
    markers = len(re.findall(r'class="marker marker-(?:keep|delete)"', html))
    assert 0 < markers <= data.MAX_MARKERS, "the chart is downsampled"
    if checkpoints > data.MAX_MARKERS:
        assert "downsampled for display" in html


def test_it_shows_summary_trials_checkpoints_and_verdicts(alice_client, spec_example, spec_ids):
    response = alice_client.get(reverse("experiments:detail", args=[spec_example.pk]))
    html = response.content.decode()
    assert "spec-example" in html and "validation_loss" in html
    assert 'id="config-yaml"' in html and "searcher:" in html
    assert html.count('href="/trials/') >= 2
    # default policy 0/1/1 keeps 10, 7, 5 of the spec's numbering
    kept = re.findall(r'<tr data-id="(\d+)"[^>]*class="">', html)
    assert sorted(map(int, kept), reverse=True) == [spec_ids[10], spec_ids[7], spec_ids[5]]
    assert html.count(">to delete<") == 7
    assert '<svg viewBox="0 0' in html and html.count('class="series"') == 2


def test_the_policys_counts_load_after_the_page(alice_client, bob_client, client, spec_example):
    html = alice_client.get(reverse("experiments:detail", args=[spec_example.pk])).content
    counts_url = reverse("experiments:gc-counts", args=[spec_example.pk])
    assert f'hx-get="{counts_url}" hx-trigger="load"'.encode() in html
    # default policy 0/1/1 keeps 10, 7, 5 of the spec's ten; anyone signed in may look
    for viewer in (alice_client, bob_client):
        response = viewer.get(counts_url)
        assert response.status_code == 200
        assert b"keeps 3, would delete 7" in response.content
    assert client.get(counts_url).status_code == 302  # signed out: to the login page


def test_checkpoints_sort_by_metric_steps_and_size(alice_client, spec_example, spec_ids):
    url = reverse("experiments:detail", args=[spec_example.pk])

    def order(ordering):
        html = alice_client.get(url, {"ordering": ordering}).content.decode()
        return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]

    best_first = order("validation_metric")
    assert best_first[:5] == [spec_ids[n] for n in (7, 8, 5, 4, 3)]  # nulls last
    assert order("-steps_completed")[:2] == sorted([spec_ids[5], spec_ids[10]], reverse=True)
    assert len(order("size_bytes")) == 10


def test_config_is_redacted(alice_client, alice, default_storage):
    experiment = services.create_experiment(
        alice,
        {
            "name": "s3-exp",
            "searcher": {"metric": "loss"},
            "checkpoint_storage": {
                "type": "s3",
                "bucket": "b",
                "access_key": "AKIAVERYSECRET",
                "secret_key": "super-secret-value",
            },
        },
    )
    html = alice_client.get(reverse("experiments:detail", args=[experiment.pk])).content.decode()
    assert "AKIAVERYSECRET" not in html and "super-secret-value" not in html
    assert "bucket: b" in html


def test_empty_experiment_says_what_to_do(alice_client, alice, default_storage):
    experiment = services.create_experiment(alice, {"name": "e", "searcher": {"metric": "m"}})
    html = alice_client.get(reverse("experiments:detail", args=[experiment.pk])).content.decode()
    assert "No trials yet" in html and "No checkpoints yet" in html
    assert "No validation metrics yet" in html


def test_unknown_experiment_is_404(alice_client, db):
    assert alice_client.get(reverse("experiments:detail", args=[999])).status_code == 404


#: The trial page, the GC page and its preview partial: their query counts do not grow either.
#: The registry adds the listed checkpoints' model versions to each; the trial page also
#: reads its best checkpoint and the chart's metric names, its metrics groups and its latest
#: log lines.
# The GC page and its preview: +1 on this running experiment, each running trial's latest.
OTHER_PAGE_QUERIES = {"trial": 14, "gc": 12, "gc-preview": 11}
POLICY_0_1_1 = {"save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1}


@pytest.mark.parametrize("checkpoints", [100, 10_000])
def test_trial_and_gc_pages_do_not_grow(
    alice_client, alice, default_storage, django_assert_num_queries, checkpoints
):
    experiment = big_experiment(alice, checkpoints, trials=2)
    trial = experiment.trials.order_by("id").first()
    urls = {
        "trial": reverse("experiments:trial", args=[trial.pk]),
        "gc": reverse("experiments:gc", args=[experiment.pk]),
        "gc-preview": reverse("experiments:gc-preview", args=[experiment.pk]),
    }
    for name, url in urls.items():
        with django_assert_num_queries(OTHER_PAGE_QUERIES[name]):
            response = alice_client.get(url, POLICY_0_1_1)
        assert response.status_code == 200, name
        html = response.content.decode()
        markers = len(re.findall(r'class="marker marker-(?:keep|delete)"', html))
        assert 0 < markers <= 2000, name
        assert html.count('class="series"') == (1 if name == "trial" else 2), name
        if checkpoints > 2000:
            assert "downsampled for display" in html, name
        if name != "trial":
            kept = re.search(r'data-retained-ids="([^"]*)"', html).group(1).split(",")
            assert len(kept) == 2, "each trial's best is its latest"
            count = re.search(r'data-deleted-count="(\d+)"', html).group(1)
            assert int(count) == checkpoints - 2, "every deleted id counted, however many"
            inline = re.search(r'data-deleted-ids="([^"]*)"', html)
            if checkpoints - 2 > gc_pages.PAGE_ID_LIMIT:  # "Copy all" fetches them from the API
                assert inline is None
                ids_url = re.search(r'data-ids-url="([^"]*)"', html).group(1)
                deleted = alice_client.get(ids_url.replace("&amp;", "&")).json()["deleted_ids"]
            else:
                deleted = inline.group(1).split(",")
            assert len(deleted) == checkpoints - 2, "every deleted id, however many"
            assert [int(i) for i in deleted] == sorted(map(int, deleted), reverse=True)
