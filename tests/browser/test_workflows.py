"""What a new user does without typing a URL: hide deleted rows, filter, select and compare,
act on a selection, download the best checkpoint, reach a storage scan, and run the GC
form from the keyboard alone."""

import tarfile
import zipfile

import pytest

from experiments import services
from experiments.demo import build_spec_example, build_training_experiment
from experiments.models import Checkpoint, GCRun
from tests.browser.helpers import finish_gc

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def after_gc(staff, default_storage):
    """4 trials of 20 checkpoints; GC (default policy 0/1/1) keeps at most 2 per trial."""
    experiment = build_training_experiment(staff, "resnet", "validation_loss", True, 4, 20, 7)
    finish_gc(services.set_experiment_state(experiment, "COMPLETED"))
    return experiment


def login(session):
    session.login("staff")


def rows(page):
    return page.locator("#checkpoint-table tbody tr")


def test_deleted_rows_hide_and_filters_stay_in_the_url(session, after_gc):
    page = session.page
    login(session)
    page.click(f"text={after_gc.name}")
    page.wait_for_selector("#checkpoint-table")
    live = after_gc.checkpoints.exclude(state="DELETED").count()
    deleted = after_gc.checkpoints.filter(state="DELETED").count()
    assert deleted > live > 0
    assert rows(page).count() == live
    assert page.locator('#checkpoint-table tr[data-state="DELETED"]').count() == 0
    # The trials table says live / deleted per trial.
    trial = after_gc.trials.order_by("id").first()
    first = page.locator("#trials-table tbody tr").first.locator("td[data-live]")
    assert first.get_attribute("data-live") == str(
        trial.checkpoints.exclude(state="DELETED").count()
    )
    assert f"{trial.checkpoints.filter(state='DELETED').count()} deleted" in first.inner_text()

    page.click("#toggle-deleted")  # one click shows them
    page.wait_for_selector('#checkpoint-table tr[data-state="DELETED"]')
    assert "deleted=1" in page.url
    page.click("#toggle-deleted")
    page.wait_for_load_state("networkidle")
    assert page.locator('#checkpoint-table tr[data-state="DELETED"]').count() == 0

    trial = after_gc.trials.order_by("id").last()
    page.select_option("#filter-trial", str(trial.pk))
    page.fill("#filter-metric-max", "100")
    page.click("#checkpoint-filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert f"trial={trial.pk}" in page.url and "metric_max=100" in page.url
    trials = set(rows(page).evaluate_all("rs => rs.map(r => r.dataset.trial)"))
    assert trials == {str(trial.pk)}
    page.fill("#filter-metric-max", "not a number")
    page.click("#checkpoint-filters button[type=submit]")
    assert "metric_max" in page.locator("#checkpoint-filters .field-error").inner_text()
    session.screenshot("experiment-filters")


def test_select_three_and_compare(session, after_gc):
    page = session.page
    login(session)
    page.click(f"text={after_gc.name}")
    boxes = page.locator('#checkpoint-table input[name="checkpoints"]')
    for i in range(3):
        boxes.nth(i).check()
    assert "3 checkpoints selected" in page.locator("#bulk-count").inner_text()
    page.click("#bulk-compare")
    page.wait_for_url("**/compare/?checkpoints=*")
    assert page.locator("#compare thead th").count() == 4  # the label column + 3
    assert page.locator('#compare tr.row-differs[data-field="Trial"]').count() == 1
    assert page.locator("svg path.series").count() >= 2
    session.screenshot("compare")


def test_bulk_protect_delete_and_download(session, after_gc, tmp_path):
    page = session.page
    login(session)
    page.click(f"text={after_gc.name}")
    boxes = page.locator('#checkpoint-table input[name="checkpoints"]')
    uuids = [boxes.nth(i).get_attribute("value") for i in range(3)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#bulk-protect")
    page.wait_for_load_state("networkidle")
    assert Checkpoint.objects.filter(uuid__in=uuids[:2], protected=True).count() == 2

    boxes = page.locator('#checkpoint-table input[name="checkpoints"]')
    boxes.nth(0).check()
    boxes.nth(1).check()
    with page.expect_download() as info:
        page.click("#bulk-download")
    target = tmp_path / "selection.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        folders = {name.split("/", 1)[0] for name in archive.namelist()}
    assert len(folders) == 2 and all(f.startswith("resnet-trial") for f in folders)

    page.reload()
    boxes = page.locator('#checkpoint-table input[name="checkpoints"]')
    boxes.nth(0).check()  # protected: skipped
    boxes.nth(2).check()
    page.click("#bulk-delete")
    third = Checkpoint.objects.get(uuid=uuids[2])
    assert "Delete 1 checkpoint (" in page.locator("#bulk-confirm h1").inner_text()
    assert page.get_attribute("#bulk-confirm-delete", "data-bytes") == str(third.size_bytes)
    assert "protected" in page.locator("#bulk-confirm").inner_text()
    page.click("#bulk-confirm-delete")
    page.wait_for_load_state("networkidle")
    assert "Skipped" in page.locator(".messages").inner_text()
    finish_gc(GCRun.objects.filter(checkpoint=third).get())
    third.refresh_from_db()
    assert third.state == "DELETED"
    assert Checkpoint.objects.get(uuid=uuids[0]).state == "COMPLETED"


def test_download_best_and_reach_a_scan(session, staff, default_storage, tmp_path):
    spec = build_spec_example(staff)
    page = session.page
    login(session)
    page.click(f"text={spec.name}")
    best = spec.checkpoints.get(validation_metric=0.2)
    with page.expect_download() as info:
        page.click("#download-best")
    folder = f"spec-example-trial{best.trial_id}-step200-{str(best.uuid)[:8]}"
    assert info.value.suggested_filename == f"{folder}.tar"
    info.value.save_as(tmp_path / "best.tar")
    with tarfile.open(tmp_path / "best.tar") as archive:
        assert f"{folder}/state-dict.pth" in archive.getnames()

    page.click("nav.mainnav >> text=Storage")
    page.click(".storage-scans")
    page.wait_for_url(f"**/storage/{default_storage.pk}/scans/")
    assert page.locator('nav.mainnav a[aria-current="page"]').inner_text() == "Storage"
    page.click("#scan-start")
    page.wait_for_selector("#scan-history")


def test_the_gc_form_by_keyboard_alone(session, staff, default_storage):
    spec = build_spec_example(staff)
    page = session.page
    login(session)
    session.goto(f"/experiments/{spec.pk}/gc/")
    for _ in range(60):
        if page.evaluate("document.activeElement.name") == "save_experiment_best":
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached save_experiment_best")
    for value in ("0", "0", "1"):
        page.keyboard.press("Control+a")
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    page.wait_for_selector('#gc-preview[data-policy="0/0/1"]')
    for _ in range(10):
        if page.evaluate("document.activeElement.id") == "gc-apply":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.locator("#gc-confirm").is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "gc-confirm-apply"
    page.keyboard.press("Enter")
    page.wait_for_selector(".alert-success")
    spec.refresh_from_db()
    assert (spec.save_experiment_best, spec.save_trial_best, spec.save_trial_latest) == (0, 0, 1)


def test_chart_choices_and_hover_tips(session, after_gc):
    page = session.page
    login(session)
    page.click(f"text={after_gc.name}")
    page.select_option("#chart-metric", "epoch")
    page.wait_for_url("**metric=epoch**")
    assert "epoch" in page.locator("figure.chart figcaption").inner_text()
    page.select_option("#chart-scale", "log")
    page.wait_for_url("**scale=log**")
    page.select_option("#chart-x", "time")
    page.wait_for_url("**x=time**")
    assert "time since the first report" in page.locator("figure.chart").inner_text()
    assert "metric=epoch" in page.url  # the choices add up in the URL
    marker = page.locator("figure.chart .marker").first
    marker.hover()
    tip = page.locator(".chart-tip")
    assert tip.is_visible()
    assert "Checkpoint" in tip.inner_text() and "step" in tip.inner_text()
    assert page.locator("#gc-history-table tbody tr").count() >= 1
    session.screenshot("experiment-chart-options")
