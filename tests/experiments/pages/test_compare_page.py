"""The compare page reads one validation per compared (trial, step), the latest, and stays
bounded however many validations were reported there and however big their metrics are
(issue 25 item 9: 240 validations of 0.8 MiB at the compared steps took 5-9 s and 1 GiB)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import services
from experiments.charts import comparison_chart
from experiments.models import Checkpoint, Validation
from experiments.views.compare import MAX_COMPARED, MAX_ROWS
from tests.experiments.pages.helpers import instances_made
from tests.factories import bulk_checkpoints

pytestmark = pytest.mark.django_db

#: Every validation of these tests carries this many metrics besides ``loss``.
WIDTH = 300


def report_many(trial, steps: int, latest_loss: float, n: int = 50, width: int = WIDTH):
    """``n`` validations of ``trial`` at ``steps``; the last one reported has ``latest_loss``."""
    filler = {f"acc{i:04}": float(i) for i in range(width)}
    rows = [
        Validation(trial=trial, steps_completed=steps, metrics={**filler, "loss": 100.0 + k})
        for k in range(n - 1)
    ]
    latest = {**filler, "loss": latest_loss}
    rows.append(Validation(trial=trial, steps_completed=steps, metrics=latest))
    Validation.objects.bulk_create(rows)


def row_cells(html: str, field: str) -> list[str]:
    row = re.search(rf'data-field="{re.escape(field)}">(.*?)</tr>', html, re.S)
    assert row, f"no row {field}"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)


def compare(client, checkpoints):
    return client.get("/compare/", {"checkpoints": ",".join(str(c.uuid) for c in checkpoints)})


def test_it_reads_only_the_latest_validation_of_each_compared_step(alice_client, experiment):
    first = services.create_trial(experiment, {"lr": 0.1})
    second = services.create_trial(experiment, {"lr": 0.2})
    report_many(first, 100, 0.25)
    report_many(second, 200, 0.75)
    # The other pairings of these trials and steps are not compared: never read either.
    report_many(first, 200, 9.0)
    report_many(second, 100, 9.0)
    (a,) = bulk_checkpoints(first, [(100, 0.25, "COMPLETED", False, 1)])
    (b,) = bulk_checkpoints(second, [(200, 0.75, "COMPLETED", False, 1)])

    with CaptureQueriesContext(connection) as queries, instances_made(Validation) as made:
        response = compare(alice_client, [a, b])

    assert response.status_code == 200
    assert sorted((v.trial_id, v.steps_completed, v.metrics["loss"]) for v in made) == [
        (first.pk, 100, 0.25),
        (second.pk, 200, 0.75),
    ]
    # session, user, checkpoints, one for the validations, two for the chart's lines
    assert len(queries) == 6, [q["sql"][:120] for q in queries]
    html = response.content.decode()
    assert row_cells(html, "loss") == ["0.2500", "0.7500"]
    assert 'data-field="acc0000"' in html


def test_the_chart_draws_the_latest_value_at_each_step(experiment, trial):
    """1,050 reports at 21 steps are 21 points: the duplicates neither sample nor bend it."""
    rows = []
    for steps in range(1, 22):
        rows += [
            Validation(trial=trial, steps_completed=steps, metrics={"loss": 1000.0 + k})
            for k in range(49)
        ]
        rows.append(Validation(trial=trial, steps_completed=steps, metrics={"loss": float(steps)}))
    Validation.objects.bulk_create(rows)
    bulk_checkpoints(trial, [(10, 10.0, "COMPLETED", False, 1), (20, 20.0, "COMPLETED", False, 1)])
    checkpoints = list(Checkpoint.objects.select_related("experiment").order_by("id"))

    chart = comparison_chart(checkpoints)

    assert not chart.downsampled
    assert [s.points for s in chart.series] == [21]
    # The markers (at their checkpoints' own metric, 10 and 20) sit on the line of 1..21:
    # the y axis spans the latest values only, never the 1,000+ of the earlier reports.
    assert max(m.y for m in chart.markers) - min(m.y for m in chart.markers) > chart.height / 4


def test_a_huge_metrics_dict_shows_a_bounded_number_of_rows(alice_client, experiment, trial):
    report_many(trial, 100, 0.5, n=1, width=5000)
    checkpoints = bulk_checkpoints(
        trial, [(100, 0.5, "COMPLETED", False, 1), (100, 0.5, "COMPLETED", False, 1)]
    )

    response = compare(alice_client, checkpoints)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-field="acc') == MAX_ROWS - 1
    assert 'data-field="loss"' in html  # the searcher metric comes first, always shown
    assert f"{5001 - MAX_ROWS:,} more metrics" in html
    assert len(html) < 200_000


def test_more_checkpoints_than_the_limit_are_a_400_naming_it(alice_client, experiment, trial):
    checkpoints = bulk_checkpoints(trial, [(s, None, "COMPLETED", False, 1) for s in range(9)])

    assert compare(alice_client, checkpoints[:MAX_COMPARED]).status_code == 200
    response = compare(alice_client, checkpoints)

    assert response.status_code == 400
    assert f"checkpoints: at most {MAX_COMPARED} checkpoints" in response.content.decode()
