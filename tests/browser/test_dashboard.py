"""The dashboard in Chromium: login, every page, the GC form against the spec, downloads."""

import tarfile

import pytest

from experiments.models import Checkpoint
from tests.spec import SPEC_POLICIES_TEXT as SPEC_ROWS
from tests.spec import db_ids_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIELDS = ("save_experiment_best", "save_trial_best", "save_trial_latest")


def type_policy(page, values):
    for name, value in zip(FIELDS, values, strict=True):
        page.fill(f"input[name={name}]", str(value))
    policy = "/".join(map(str, values))
    page.wait_for_selector(f'#gc-preview[data-policy="{policy}"]')
    page.wait_for_load_state("networkidle")


def test_every_page_renders_without_console_errors(session, spec_example, staff):
    page = session.page
    session.goto("/")
    assert "/accounts/login/" in page.url
    session.screenshot("login")

    session.login("staff")
    assert page.locator("#experiments").get_by_text("spec-example").is_visible()
    session.screenshot("experiments")

    page.click("text=spec-example")
    page.wait_for_selector("#checkpoint-table")
    assert page.locator("svg path.series").count() == 2
    # The policy's counts arrive after the page (htmx); 0/1/1 keeps 10, 7 and 5.
    page.wait_for_selector("#gc-counts:has-text('keeps 3, would delete 7')")
    page.click("details.config summary")
    assert page.locator("#config-yaml").is_visible()
    session.screenshot("experiment")

    trial = spec_example.trials.order_by("id").first()
    session.goto(f"/trials/{trial.pk}/")
    assert page.locator("#hparams").is_visible()
    session.screenshot("trial")

    checkpoint = spec_example.checkpoints.get(trial=trial, steps_completed=500)
    session.goto(f"/checkpoints/{checkpoint.uuid}/")
    assert page.locator("#format[data-format=pytorch]").is_visible()
    assert "models_state_dict" in page.locator("#load-snippet").inner_text()
    session.screenshot("checkpoint")

    session.goto(f"/experiments/{spec_example.pk}/gc/")
    session.screenshot("gc")

    session.goto("/storage/")
    assert page.locator("#storages").get_by_text("spec-example").is_visible()
    session.screenshot("storage")


def test_gc_preview_follows_the_spec_table(session, spec_example, spec_ids):
    page = session.page
    session.login("alice")
    session.goto(f"/experiments/{spec_example.pk}/gc/")
    preview = page.locator("#gc-preview")
    assert preview.get_attribute("data-retained-ids") == db_ids_text(spec_ids, "10,7,5")

    for values, saved in SPEC_ROWS:
        type_policy(page, values)
        assert preview.get_attribute("data-retained-ids") == db_ids_text(spec_ids, saved), values
        deleted = sorted(set(spec_ids.values()) - {spec_ids[int(n)] for n in saved.split(",") if n})
        assert preview.get_attribute("data-deleted-ids") == ",".join(
            str(i) for i in reversed(deleted)
        )
        assert page.locator("#gc-preview-table tr.row-delete").count() == len(deleted)
        assert page.locator("#gc-preview g.marker-delete").count() == len(deleted)
    session.screenshot("gc-preview")

    # Invalid input: an inline message, the preview stays as it was, Apply is disabled.
    type_policy(page, (2, 1, 1))
    before = preview.get_attribute("data-retained-ids")
    page.fill("input[name=save_trial_best]", "-1")
    page.wait_for_selector("#gc-errors .field-error")
    assert "save_trial_best" in page.locator("#gc-errors").inner_text()
    assert preview.get_attribute("data-retained-ids") == before
    assert preview.get_attribute("data-policy") == "2/1/1"
    assert page.locator("#gc-apply").is_disabled()
    session.screenshot("gc-invalid")

    page.fill("input[name=save_trial_best]", "1.5")
    page.wait_for_function("() => document.querySelector('#gc-errors').textContent.includes('1.5')")
    assert preview.get_attribute("data-retained-ids") == before

    page.fill("input[name=save_trial_best]", "0")
    page.wait_for_selector('#gc-preview[data-policy="2/0/1"]')
    page.wait_for_function("() => document.querySelector('#gc-errors').textContent.trim() === ''")
    assert page.locator("#gc-apply").is_enabled()


def test_apply_runs_gc_and_updates_the_table(session, spec_example, spec_ids):
    page = session.page
    session.login("alice")
    session.goto(f"/experiments/{spec_example.pk}/gc/")
    type_policy(page, (2, 1, 0))

    page.click("#gc-apply")
    dialog = page.locator("#gc-confirm")
    assert dialog.is_visible()
    reclaimed = page.locator("#gc-preview").get_attribute("data-reclaimed-human")
    assert page.locator("#gc-confirm-title").inner_text() == f"Delete 7 checkpoints ({reclaimed})?"
    # The example is still running: the dialog names trial 2, whose latest (10) goes.
    running = page.locator("#gc-confirm-running").inner_text()
    assert "1 running trial would lose its latest checkpoint." in running
    assert f"Trial {spec_example.trials.order_by('id').last().pk}" in running
    session.screenshot("gc-confirm")
    page.click("#gc-confirm-apply")

    page.wait_for_selector('#gc-run[data-finished="true"]', timeout=30_000)
    assert page.locator("#gc-run").get_attribute("data-state") == "SUCCEEDED"
    page.wait_for_selector('#gc-preview[data-deleted-ids=""]')
    kept = db_ids_text(spec_ids, "8,7,5")
    assert page.locator("#gc-preview").get_attribute("data-retained-ids") == kept
    session.screenshot("gc-applied")

    session.goto(f"/experiments/{spec_example.pk}/")
    rows = page.locator("#checkpoint-table tbody tr")
    states = {
        int(rows.nth(i).get_attribute("data-id")): rows.nth(i).get_attribute("data-state")
        for i in range(rows.count())
    }
    assert {pk for pk, state in states.items() if state != "DELETED"} == {
        int(i) for i in kept.split(",")
    }
    assert Checkpoint.objects.filter(experiment=spec_example, state="DELETED").count() == 7
    page.wait_for_selector("#gc-counts:has-text('keeps 3, would delete 0')")
    session.screenshot("experiment-after-gc")


def test_download_a_checkpoint_with_the_button(session, spec_example, tmp_path):
    page = session.page
    session.login("alice")
    checkpoint = spec_example.checkpoints.order_by("-id").first()
    session.goto(f"/checkpoints/{checkpoint.uuid}/")
    with page.expect_download() as download_info:
        page.click("#download-tar")
    folder = f"spec-example-trial{checkpoint.trial_id}-step500-{str(checkpoint.uuid)[:8]}"
    assert download_info.value.suggested_filename == f"{folder}.tar"
    target = tmp_path / "checkpoint.tar"
    download_info.value.save_as(target)
    with tarfile.open(target) as archive:
        names = set(archive.getnames())
        # Everything unpacks into one folder named after the checkpoint.
        assert {f"{folder}/{n}" for n in ("state-dict.pth", "metadata.json")} <= names
        assert all(name.startswith(f"{folder}/") for name in names)
        content = archive.extractfile(f"{folder}/code/model_def.py").read()
    assert content.startswith(b'"""Model definition')
