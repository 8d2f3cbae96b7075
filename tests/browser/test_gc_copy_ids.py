"""The GC page's "Copy all" of an id list too long to inline: fetched when clicked."""

import pytest

from experiments.gc.preview import gc_preview
from experiments.views import gc as gc_pages
from tests.browser.helpers import browser_session
from tests.experiments.gc.builders import policy_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_copy_all_fetches_the_whole_list_it_does_not_inline(
    browser, live_server, spec_example, monkeypatch
):
    monkeypatch.setattr(gc_pages, "PAGE_ID_LIMIT", 3)
    with browser_session(browser, live_server.url, clipboard=True) as session:
        session.login("alice")
        session.goto(f"/experiments/{spec_example.pk}/gc/")
        page = session.page
        for name, value in zip(
            ("save_experiment_best", "save_trial_best", "save_trial_latest"), (1, 0, 1), strict=True
        ):
            page.fill(f"input[name={name}]", str(value))
        page.wait_for_selector('#gc-preview[data-policy="1/0/1"]')
        preview = page.locator("#gc-preview")
        assert preview.get_attribute("data-deleted-ids") is None  # more than 3: not inlined
        page.click("#copy-deleted-ids")
        page.wait_for_function(
            "() => document.querySelector('#copy-deleted-ids').textContent === 'Copied'"
        )
        copied = page.evaluate("navigator.clipboard.readText()")
        expected = gc_preview(spec_example, policy_of((1, 0, 1))).deleted_ids
        assert len(expected) > 3 and copied == ",".join(map(str, expected))
