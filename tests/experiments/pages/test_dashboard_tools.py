"""Compare, nav search, bulk actions, best-download links and foldered archives (no browser)."""

import io
import tarfile
import uuid as uuid_lib

import pytest

from experiments.models import Checkpoint, Experiment, GCRun

pytestmark = pytest.mark.django_db


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getnames()


def uuids(experiment, n):
    return [
        str(u) for u in experiment.checkpoints.order_by("id").values_list("uuid", flat=True)[:n]
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "choose 2 to 8"),
        ("ONE", "is not a checkpoint UUID"),
        (None, "at most 8"),
        (str(uuid_lib.UUID(int=1)) + "," + str(uuid_lib.UUID(int=2)), "no checkpoint"),
    ],
)
def test_compare_names_the_parameter_and_limit(alice_client, spec_example, value, expected):
    if value is None:
        value = ",".join(str(uuid_lib.uuid4()) for _ in range(9))
    response = alice_client.get("/compare/", {"checkpoints": value})
    assert response.status_code == 400
    assert "checkpoints:" in response.content.decode() and expected in response.content.decode()


def test_compare_marks_the_rows_that_differ(alice_client, spec_example):
    chosen = [c for c in spec_example.checkpoints.order_by("id") if c.validation_metric][:3]
    response = alice_client.get("/compare/", {"checkpoints": ",".join(str(c.uuid) for c in chosen)})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="row-differs" data-field="Steps"' in html
    assert 'class="" data-field="learning_rate"' not in html  # no such hparam here
    assert 'class="" data-field="hidden_size"' in html  # same in every trial: not marked


def test_search_jumps_to_the_one_match(alice_client, spec_example):
    checkpoint = spec_example.checkpoints.first()
    prefix = str(checkpoint.uuid).replace("-", "")[:12].upper()
    response = alice_client.get("/search/", {"q": prefix})
    assert response.status_code == 302 and response["Location"].endswith(f"/{checkpoint.uuid}/")


@pytest.mark.parametrize(
    ("query", "message"), [("zz-top", "hexadecimal"), ("ab", "at least 4"), ("", "Type")]
)
def test_search_explains_bad_input(alice_client, spec_example, query, message):
    response = alice_client.get("/search/", {"q": query})
    assert response.status_code == 200 and message in response.content.decode()


def test_bulk_changes_need_the_owner(bob_client, alice_client, spec_example):
    chosen = uuids(spec_example, 2)
    response = bob_client.post(
        "/checkpoints/bulk/", {"action": "protect", "checkpoints": chosen, "next": "/"}
    )
    assert response.status_code == 403
    assert not Checkpoint.objects.filter(protected=True).exists()
    response = alice_client.post(
        "/checkpoints/bulk/", {"action": "protect", "checkpoints": chosen, "next": "/"}
    )
    assert response.status_code == 302
    assert Checkpoint.objects.filter(protected=True).count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "explode"}, "action: choose one of"),
        ({"action": "compare"}, "Select at least one"),
        ({"action": "delete", "checkpoints": ["nope"]}, "not a checkpoint UUID"),
        ({"action": "compare", "checkpoints": "one"}, "Select 2 to 8"),
    ],
)
def test_bulk_bad_input_is_a_message(alice_client, spec_example, data, message):
    if data.get("checkpoints") == "one":
        data["checkpoints"] = uuids(spec_example, 1)
    response = alice_client.post("/checkpoints/bulk/", {**data, "next": "/"}, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()


def test_bulk_delete_asks_first_with_the_bytes(alice_client, spec_example):
    chosen = list(spec_example.checkpoints.order_by("id")[:2])
    data = {"action": "delete", "checkpoints": [str(c.uuid) for c in chosen], "next": "/"}
    response = alice_client.post("/checkpoints/bulk/", data)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="bulk-confirm"' in html
    assert f'data-bytes="{sum(c.size_bytes for c in chosen)}"' in html
    assert not Checkpoint.objects.filter(state="DELETED").exists()  # nothing happened yet


def test_bulk_delete_skips_the_checkpoints_of_a_deleting_experiment(alice_client, spec_example):
    chosen = list(spec_example.checkpoints.filter(state="COMPLETED").order_by("id")[:2])
    Experiment.objects.filter(pk=spec_example.pk).update(state="DELETING")
    runs = GCRun.objects.count()
    data = {"action": "delete", "checkpoints": [str(c.uuid) for c in chosen], "confirm": "1"}
    response = alice_client.post("/checkpoints/bulk/", {**data, "next": "/"}, follow=True)
    assert "Deleting 0 checkpoint(s)." in response.content.decode()
    assert f"experiment {spec_example.pk} is being deleted" in response.content.decode()
    assert GCRun.objects.count() == runs


def test_experiment_page_offers_the_best_checkpoint(alice_client, spec_example):
    best = spec_example.checkpoints.get(validation_metric=0.2)
    html = alice_client.get(f"/experiments/{spec_example.pk}/").content.decode()
    assert 'id="download-best"' in html
    assert f"/api/v1/checkpoints/{best.uuid}/download?format=tar&amp;folder=1" in html


def test_the_api_layout_stays_relative_unless_folder_is_asked(alice_api, spec_example):
    checkpoint = spec_example.checkpoints.order_by("id").last()
    url = f"/api/v1/checkpoints/{checkpoint.uuid}/download?format=tar"
    plain = alice_api.get(url)
    assert plain["Content-Disposition"] == f'attachment; filename="{checkpoint.uuid}.tar"'
    names = tar_names(b"".join(plain.streaming_content))
    assert "state-dict.pth" in names
    folder = alice_api.get(url + "&folder=1")
    name = f"spec-example-trial{checkpoint.trial_id}-step500-{str(checkpoint.uuid)[:8]}"
    assert folder["Content-Disposition"] == f'attachment; filename="{name}.tar"'
    data = b"".join(folder.streaming_content)
    assert int(folder["Content-Length"]) == len(data)
    names = tar_names(data)
    assert f"{name}/state-dict.pth" in names and all(n.startswith(name + "/") for n in names)


def test_the_api_filters_checkpoints_by_metric_range(alice_api, spec_example):
    response = alice_api.get(
        f"/api/v1/experiments/{spec_example.pk}/checkpoints?metric_min=0.3&metric_max=0.5"
    )
    assert sorted(c["validation_metric"] for c in response.json()["results"]) == [0.3, 0.4, 0.5]
    response = alice_api.get(f"/api/v1/experiments/{spec_example.pk}/checkpoints?metric_min=1e999")
    assert response.status_code == 400 and "metric_min" in response.json()["message"]


def test_gc_history_says_when_who_and_what(alice_client, alice_api, spec_example):
    from experiments.models import GCRun

    alice_client.post(
        f"/experiments/{spec_example.pk}/gc/",
        {"save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1},
    )
    GCRun.objects.create(experiment=spec_example, reason="SWEEP", state="SUCCEEDED")
    html = alice_client.get(f"/experiments/{spec_example.pk}/").content.decode()
    assert html.count('id="gc-history-table"') == 1
    table = html[html.index('id="gc-history-table"') :]
    manual = table[table.index('data-run="') :]
    assert "alice" in table and "automatic" in table and "Policy changed" in table
    assert "0/1/1" in manual
    run = GCRun.objects.filter(started_by__username="alice").get()
    stamp = run.created_at.strftime("%Y-%m-%d %H:%M")
    assert f'title="{stamp}' in table  # the absolute time on hover
    assert alice_api.get(f"/api/v1/gc-runs/{run.pk}").json()["started_by"] == "alice"
