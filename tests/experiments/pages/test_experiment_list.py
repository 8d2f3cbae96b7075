"""The experiments list: aggregates, search, state filter, sorting and pages."""

import re

import pytest
from django.urls import reverse

from experiments import services, summary
from experiments.models import Checkpoint, Experiment

pytestmark = pytest.mark.django_db


def experiment_with_metrics(owner, name, metric_values=(), state=None, smaller_is_better=True):
    """An experiment made through the services, one checkpoint per metric value."""
    experiment = services.create_experiment(
        owner,
        {"name": name, "searcher": {"metric": "loss", "smaller_is_better": smaller_is_better}},
    )
    trial = services.create_trial(experiment)
    for steps, value in enumerate(metric_values, start=1):
        services.report_validation(trial, steps, {"loss": value})
        services.report_checkpoint(trial, steps, resources={"a.bin": 1000 * steps})
    if state:
        Experiment.objects.filter(pk=experiment.pk).update(state=state)
    return experiment


def row_of(html: str, name: str) -> str:
    match = re.search(rf"<tr>(?:(?!</tr>).)*>{re.escape(name)}</a>.*?</tr>", html, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def test_it_shows_counts_bytes_and_best_metric(alice_client, alice, default_storage):
    experiment = experiment_with_metrics(alice, "mnist", [0.9, 0.3, 0.5])
    Checkpoint.objects.filter(experiment=experiment, steps_completed=1).update(state="DELETED")
    summary.refresh(experiment)  # the row was changed behind the services' back
    experiment_with_metrics(alice, "higher", [0.7, 0.8], smaller_is_better=False)

    html = alice_client.get(reverse("experiments:list")).content.decode()

    row = row_of(html, "mnist")
    assert "2 <span" in row and "1 deleted" in row  # 2 live, 1 deleted
    assert "4.9 KiB" in row  # 2000 + 3000 bytes live
    assert ">0.3000<" in row  # smaller is better: the minimum
    assert "shared_fs" in row and "alice" in row
    assert ">0.8000<" in row_of(html, "higher")  # larger is better: the maximum


def test_it_searches_and_filters_by_state(alice_client, alice, bob, default_storage):
    experiment_with_metrics(alice, "resnet-a")
    experiment_with_metrics(bob, "bert-b", state="COMPLETED")
    url = reverse("experiments:list")

    found = alice_client.get(url, {"q": "resn"}).content.decode()
    assert "resnet-a" in found and "bert-b" not in found

    by_owner = alice_client.get(url, {"q": "bob"}).content.decode()
    assert "bert-b" in by_owner and "resnet-a" not in by_owner

    completed = alice_client.get(url, {"state": "COMPLETED"}).content.decode()
    assert "bert-b" in completed and "resnet-a" not in completed

    nothing = alice_client.get(url, {"q": "zzz"}).content.decode()
    assert "No experiments match" in nothing


def test_it_sorts_by_aggregates(alice_client, alice, default_storage):
    experiment_with_metrics(alice, "small", [0.5])
    experiment_with_metrics(alice, "large", [0.5, 0.4, 0.3])
    url = reverse("experiments:list")

    most = alice_client.get(url, {"sort": "-bytes"}).content.decode()
    assert most.index(">large<") < most.index(">small<")
    least = alice_client.get(url, {"sort": "bytes"}).content.decode()
    assert least.index(">small<") < least.index(">large<")


def test_it_paginates_with_constant_queries(
    alice_client, alice, default_storage, django_assert_max_num_queries
):
    for i in range(30):
        experiment_with_metrics(alice, f"exp-{i:02d}", [0.5])
    url = reverse("experiments:list")
    with django_assert_max_num_queries(6):
        first = alice_client.get(url).content.decode()
    assert ">exp-29<" in first and ">exp-04<" not in first
    second = alice_client.get(url, {"page": 2}).content.decode()
    assert ">exp-04<" in second and "26–30 of 30" in second


def test_empty_state_says_what_to_do(alice_client, alice):
    html = alice_client.get(reverse("experiments:list")).content.decode()
    assert "No experiments yet" in html and "load_demo" in html


def test_best_metric_sorts_best_first_whichever_way_is_better(alice_client, alice, default_storage):
    experiment_with_metrics(alice, "loss-good", [0.1])
    experiment_with_metrics(alice, "loss-bad", [0.5])
    experiment_with_metrics(alice, "acc-good", [0.9], smaller_is_better=False)
    experiment_with_metrics(alice, "acc-bad", [0.6], smaller_is_better=False)
    html = alice_client.get(reverse("experiments:list"), {"sort": "best"}).content.decode()
    order = sorted(
        ("loss-good", "loss-bad", "acc-good", "acc-bad"), key=lambda name: html.index(f">{name}<")
    )
    assert order.index("loss-good") < order.index("loss-bad")
    assert order.index("acc-good") < order.index("acc-bad")
