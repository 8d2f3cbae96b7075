"""The model registry in Chromium: register from the checkpoint page, then see the
checkpoint kept on the GC page under 0/0/0, and the registry pages fit 390 and 1400 px."""

import pytest

from experiments.models import ModelVersion
from tests.spec import spec_checkpoints

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_fits(session, width: int, path: str, name: str):
    session.page.set_viewport_size({"width": width, "height": 900})
    session.goto(path)
    overflow = session.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    session.screenshot(f"{name}-{width}")
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"


def test_register_from_the_checkpoint_page_and_see_it_kept(session, spec_example, alice):
    page = session.page
    session.login("alice")
    nine = spec_checkpoints(spec_example)[9]  # no metric, not latest: 0/0/0 would delete it
    session.goto(f"/checkpoints/{nine.uuid}/")
    assert page.locator("#register-toggle").inner_text() == "Register as model version…"
    page.fill("#register-model", "resnet-prod")
    page.fill("#register-comment", "the one we ship")
    page.click("#register-submit")
    page.wait_for_selector(".alert-success")
    assert "Registered as resnet-prod v1" in page.locator(".alert-success").inner_text()
    assert page.locator("h1 .registered-badge").is_visible()
    assert page.locator("#model-versions").get_by_text("resnet-prod").is_visible()
    assert ModelVersion.objects.filter(checkpoint=nine, comment="the one we ship").exists()

    session.goto(f"/experiments/{spec_example.pk}/gc/")
    for name in ("save_experiment_best", "save_trial_best", "save_trial_latest"):
        page.fill(f"input[name={name}]", "0")
    page.wait_for_selector('#gc-preview[data-policy="0/0/0"]')
    page.wait_for_load_state("networkidle")
    preview = page.locator("#gc-preview")
    assert preview.get_attribute("data-retained-ids") == str(nine.pk)
    row = page.locator(f'#gc-preview-table tr[data-id="{nine.pk}"]')
    assert "registered as resnet-prod v1" in row.inner_text()
    session.screenshot("gc-registered")

    session.goto("/models/")
    page.click("text=resnet-prod")
    page.wait_for_selector("#model-versions")
    assert page.locator(f'tr[data-checkpoint="{nine.uuid}"]').is_visible()
    assert "torch.load" in page.locator("#load-snippet").inner_text()


@pytest.mark.parametrize("width", [390, 1400])
def test_the_pages_fit(session, spec_example, alice, width):
    from experiments import registry

    model = registry.create_model(
        alice, "a-rather-long-model-name-for-narrow-screens", "d" * 200, ["vision", "prod"]
    )
    checkpoint = spec_checkpoints(spec_example)[7]
    registry.register_version(model, checkpoint, alice, "comment " * 20)
    session.login("alice")
    assert_fits(session, width, "/models/", "models")
    assert_fits(session, width, f"/models/{model.name}/", "model")
    assert_fits(session, width, f"/checkpoints/{checkpoint.uuid}/", "checkpoint-registered")
