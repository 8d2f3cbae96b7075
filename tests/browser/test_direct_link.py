"""The checkpoint page's "Direct link" button on an object store (S3 on moto), at 390 px and
1400 px: it copies a presigned URL that downloads the file without ckptweb."""

import pytest
import requests

from experiments.models import Checkpoint, Experiment, Trial
from tests.browser.helpers import browser_session
from tests.stores import make_store, unique_prefix

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FILES = {"state-dict.pth": b"weights" * 1000, "code/a-rather-long-file-name-for-a-phone.py": b"x"}


@pytest.fixture
def s3_checkpoint(request, alice, tmp_path):
    store = make_store("s3", request, tmp_path, unique_prefix())
    experiment = Experiment.objects.create(
        owner=alice, name="direct", searcher_metric="loss", storage=store.config
    )
    checkpoint = Checkpoint.objects.create(
        trial=Trial.objects.create(experiment=experiment),
        steps_completed=1,
        resources={path: len(data) for path, data in FILES.items()},
    )
    store.put_files(checkpoint.uuid, FILES)
    return checkpoint


@pytest.mark.parametrize("width", [390, 1400])
def test_direct_link_copies_a_working_presigned_url(browser, live_server, s3_checkpoint, width):
    with browser_session(browser, live_server.url, width=width, clipboard=True) as session:
        session.login("alice")
        session.goto(f"/checkpoints/{s3_checkpoint.uuid}/")
        page = session.page
        buttons = page.locator("button.direct-link")
        assert buttons.count() == len(FILES)
        # The files card (with its buttons) fits the viewport. (At 390 px the site header's
        # user box overflows on every page; that is base.html's, not this card's.)
        right = page.evaluate(
            "Math.max(...[...document.querySelectorAll('#files, #files *')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        width_now = page.evaluate("document.documentElement.clientWidth")
        assert right <= width_now, f"the files table ends at {right}px of {width_now}px"
        button = page.locator('button[data-direct-path="state-dict.pth"]')
        button.click()
        page.wait_for_function(
            "() => document.querySelector('[data-direct-path=\"state-dict.pth\"]')"
            ".textContent === 'Copied'"
        )
        url = page.evaluate("navigator.clipboard.readText()")
        assert url.startswith("http://127.0.0.1:") and "X-Amz-Signature" in url
        assert requests.get(url, timeout=30).content == FILES["state-dict.pth"]
        session.screenshot(f"checkpoint-direct-{width}")
