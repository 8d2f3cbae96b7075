"""README screenshots (docs/*.png) from the demo, taken when CKPTWEB_DOCS_SCREENSHOTS=1.

``CKPTWEB_DOCS_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_docs_screenshots.py``
rewrites the images; otherwise the module is skipped (it only exists to refresh the docs).
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from experiments.models import Experiment
from tests.browser.helpers import signed_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("CKPTWEB_DOCS_SCREENSHOTS") != "1",
        reason="refreshes docs/*.png only when CKPTWEB_DOCS_SCREENSHOTS=1",
    ),
]

DOCS = Path(settings.BASE_DIR) / "docs"


def test_refresh_the_readme_screenshots(browser, live_server, staff, default_storage):
    call_command("load_demo", owner="staff")
    resnet = Experiment.objects.get(name="resnet18-cifar10")
    bert = Experiment.objects.get(name="bert-base-glue-sst2")
    page = signed_in_page(browser, live_server.url, "staff", 1400)

    def shoot(path: str, name: str, width: int = 1400, height: int | None = None):
        page.set_viewport_size({"width": width, "height": height or 900})
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), path
        page.screenshot(path=str(DOCS / name), full_page=height is None)

    shoot(f"/experiments/{bert.pk}/", "experiment-page.png", height=1300)
    shoot(
        f"/experiments/{bert.pk}/gc/?save_experiment_best=1&save_trial_best=1&save_trial_latest=0",
        "gc-page.png",
    )
    shoot(f"/experiments/{resnet.pk}/", "experiment-after-gc.png", height=1400)
    uuids = ",".join(str(c.uuid) for c in bert.checkpoints.order_by("-validation_metric")[:3])
    shoot(f"/compare/?checkpoints={uuids}", "compare-page.png")
    shoot(f"/experiments/{resnet.pk}/", "experiment-phone.png", width=390, height=1600)
    page.context.close()
