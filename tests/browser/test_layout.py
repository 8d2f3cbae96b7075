"""Every page fits 1400 px and 390 px wide without sideways scrolling; the top bar collapses."""

import pytest

from experiments import services
from experiments.demo import build_spec_example, build_training_experiment
from storage.reconcile.models import StorageScan
from storage.reconcile.scan import execute_scan
from tests.browser.helpers import SCREENSHOTS, finish_gc, sign_in, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1400, 390)
FITS = "document.documentElement.scrollWidth <= window.innerWidth"
#: For the failure message: the outermost elements that stick out on the right.
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > innerWidth + 1
    && el.parentElement.getBoundingClientRect().right <= innerWidth + 1)
  .slice(0, 5).map(el => `${el.tagName}.${el.className}#${el.id}`)"""


@pytest.fixture
def demo(staff, default_storage):
    """The spec example, a 160-checkpoint experiment after GC, and a finished storage scan."""
    spec = build_spec_example(staff)
    wide = build_training_experiment(staff, "wide-resnet", "validation_loss", True, 4, 40, 7)
    finish_gc(services.set_experiment_state(wide, "COMPLETED"))  # GC deletes 154 of the 160
    scan = StorageScan.objects.create(storage=default_storage, grace_seconds=0)
    scan = execute_scan(scan.pk)
    return {"spec": spec, "wide": wide, "storage": default_storage, "scan": scan}


def pages(demo) -> list[str]:
    spec, wide, storage = demo["spec"], demo["wide"], demo["storage"]
    trial = wide.trials.order_by("id").first()
    checkpoint = spec.checkpoints.order_by("id").last()
    uuids = ",".join(str(c.uuid) for c in wide.checkpoints.order_by("-id")[:3])
    return [
        "/",
        f"/experiments/{wide.pk}/",
        f"/experiments/{wide.pk}/?deleted=1",
        f"/experiments/{wide.pk}/?metric=epoch&x=time&scale=log",
        f"/experiments/{wide.pk}/gc/",
        f"/experiments/{wide.pk}/gc/?save_experiment_best=0&save_trial_best=0&save_trial_latest=0",
        f"/trials/{trial.pk}/",
        f"/checkpoints/{checkpoint.uuid}/",
        f"/compare/?checkpoints={uuids}",
        f"/search/?q={str(checkpoint.uuid)[:2]}",
        "/storage/",
        f"/storage/{storage.pk}/scans/",
        f"/storage/{storage.pk}/scans/{demo['scan'].pk}/",
        f"/admin/storage/storageconfig/{storage.pk}/change/",
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(browser, live_server, demo, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/accounts/login/")
    assert page.evaluate(FITS), "login page"
    sign_in(page, live_server.url, "staff")
    too_wide = []
    for path in pages(demo):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        name = path.strip("/").split("?")[0].replace("/", "-") or "experiments"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"w{width}-{name}.png"), full_page=True)
        if not page.evaluate(FITS):
            scroll = page.evaluate("document.documentElement.scrollWidth")
            too_wide.append(f"{path}: {scroll} px {page.evaluate(WIDE_ELEMENTS)}")
    context.close()
    assert not too_wide, f"wider than {width} px: {too_wide}"
    assert not errors


def test_the_top_bar_collapses_on_a_phone(browser, live_server, demo):
    page = signed_in_page(browser, live_server.url, "staff", 390, 844)
    sign_out = page.get_by_role("button", name="Sign out")
    assert not sign_out.is_visible()
    page.click("#nav-toggle")
    assert sign_out.is_visible()
    assert page.get_attribute("#nav-toggle", "aria-expanded") == "true"
    box = sign_out.bounding_box()
    assert box["x"] + box["width"] <= 390
    # The checkpoint search of the top bar jumps to the checkpoint.
    checkpoint = demo["spec"].checkpoints.order_by("id").first()
    page.fill("#nav-search", str(checkpoint.uuid)[:13].upper())
    page.press("#nav-search", "Enter")
    page.wait_for_url(f"**/checkpoints/{checkpoint.uuid}/")
    page.context.close()


def test_the_copy_button_does_not_cover_the_snippet(browser, live_server, demo):
    page = signed_in_page(browser, live_server.url, "staff", 390, 844)
    checkpoint = demo["spec"].checkpoints.order_by("id").last()
    page.goto(f"{live_server.url}/checkpoints/{checkpoint.uuid}/")
    button = page.locator(".copy-btn").bounding_box()
    snippet = page.locator("#load-snippet").bounding_box()
    assert button["y"] + button["height"] <= snippet["y"]
    page.context.close()
