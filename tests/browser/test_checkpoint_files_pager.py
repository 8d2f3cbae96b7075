"""The checkpoint page's paged file list in Chromium: next page, filter, at 1400 and 390 px."""

import pytest

from experiments.views.checkpoint_files import FILES_PAGE_SIZE
from tests.factories import report_with_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


def test_files_page_next_and_filter(session, alice, default_storage, trial):
    names = [
        f"model/shard-{i // 50:02}/tensor-parallel-rank-{i:04}-of-0250.safetensors"
        for i in range(FILES_PAGE_SIZE + 50)
    ]
    checkpoint = report_with_files(default_storage, trial, 100, {n: b"w" for n in names})
    page = session.page
    session.login("alice")
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        session.goto(f"/checkpoints/{checkpoint.uuid}/")
        assert page.locator("tr.file-row").count() == FILES_PAGE_SIZE
        assert page.evaluate(NO_SIDEWAYS), f"sideways scroll at {width}px"
        session.screenshot(f"checkpoint-files-{width}")

    page.click("#files-card a[rel=next]")
    page.wait_for_url("**/?page=2#files-card")
    assert page.locator("tr.file-row").count() == 50
    assert page.locator("tr.file-row td.mono").first.inner_text() == names[FILES_PAGE_SIZE]
    # The link lands on the files card, its head below the sticky top bar.
    head = page.locator("#files-card h2").bounding_box()
    bar = page.locator(".topbar").bounding_box()
    assert 0 <= head["y"] - (bar["y"] + bar["height"]) < 100, (head, bar)

    page.fill("#files-filter", "shard-03/")
    page.press("#files-filter", "Enter")
    page.wait_for_url("**/?q=shard-03%2F#files-card")
    assert page.locator("tr.file-row").count() == 50
    assert "50 of 250 match" in page.locator("#files-matched").inner_text()
    assert page.evaluate(NO_SIDEWAYS), "sideways scroll at 390px (filtered)"
    session.screenshot("checkpoint-files-filtered-390")
