"""The checkpoint page's "Delete files…" action in Chromium: live preview, confirm, widths."""

import pytest

from experiments.demo import build_spec_example

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [390, 1400])
def test_delete_files_with_a_live_preview(session, alice, default_storage, width):
    experiment = build_spec_example(alice)
    checkpoint = experiment.checkpoints.order_by("id").first()
    page = session.page
    page.set_viewport_size({"width": width, "height": 900})
    session.login("alice")
    session.goto(f"/checkpoints/{checkpoint.uuid}/")
    page.click("#rm-action summary")
    page.fill("#rm-globs", "code/**")
    page.wait_for_selector('#rm-preview[data-files="2"]')
    preview = page.locator("#rm-preview").inner_text()
    assert "code/model_def.py" in preview and "state-dict.pth" not in preview
    no_sideways = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_sideways), f"sideways scroll at {width}px"
    session.screenshot(f"checkpoint-rm-{width}")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#rm-submit")
    page.wait_for_selector("text=Deleting files: GC run")
    checkpoint.refresh_from_db()
    assert checkpoint.state == "PARTIALLY_DELETED"
    assert not any(path.startswith("code/") for path in checkpoint.resources)
    assert page.evaluate(no_sideways)
