"""The Content-Security-Policy in Chromium (issue 25, item 13): every page a user and staff
use carries the header and works under it, with no violation reported.

Chromium reports a blocked inline script, ``style`` element, ``eval`` or foreign resource
as a ``securitypolicyviolation`` event (collected by an init script, which CSP does not
govern) and a console error (which ``Session`` fails the test on).
"""

import pytest

from experiments.models import Checkpoint, GCRun
from tests.browser.helpers import browser_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${where})`);
});
"""


class Pages:
    """Opens pages, asserting the policy header on each and no violation after it."""

    def __init__(self, session):
        self.session = session
        self.page = session.page
        self.page.add_init_script(COLLECT_VIOLATIONS)

    def open(self, path: str):
        response = self.session.goto(path)
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        self.check(path)

    def check(self, where: str):
        violations = self.page.evaluate("window.__violations || []")
        assert not violations, (where, violations)


def test_every_page_works_under_the_policy(browser, live_server, spec_example, staff):
    checkpoints = list(spec_example.checkpoints.filter(state="COMPLETED").order_by("id"))
    with browser_session(browser, live_server.url) as session:
        pages = Pages(session)
        pages.open("/accounts/login/")
        session.login("staff")
        page = session.page
        pages.open("/")
        pages.open(f"/experiments/{spec_example.pk}/")
        page.wait_for_selector("#gc-counts:has-text('would delete')")  # htmx, after load
        pages.check("experiment page's counts")

        pages.open(f"/experiments/{spec_example.pk}/gc/")
        for name, value in zip(
            ("save_experiment_best", "save_trial_best", "save_trial_latest"), (1, 0, 2), strict=True
        ):
            page.fill(f"input[name={name}]", str(value))
        page.wait_for_selector('#gc-preview[data-policy="1/0/2"]')  # the live preview
        page.wait_for_load_state("networkidle")
        # Enter previews at once (no htmx event filter: that would be eval), and applies
        # nothing: the form's default button is the dialog's "Delete and apply".
        with page.expect_response(lambda r: "/gc/preview/" in r.url):
            page.press("input[name=save_trial_latest]", "Enter")
        page.wait_for_load_state("networkidle")
        assert page.url.endswith(f"/experiments/{spec_example.pk}/gc/")
        assert not GCRun.objects.filter(experiment=spec_example).exists()
        assert Checkpoint.objects.filter(pk__in=[c.pk for c in checkpoints]).count() == len(
            checkpoints
        )
        assert set(spec_example.checkpoints.values_list("state", flat=True)) == {"COMPLETED"}
        pages.check("GC live preview")

        checkpoint = checkpoints[0]
        pages.open(f"/checkpoints/{checkpoint.uuid}/")
        page.click("#rm-action summary")
        page.fill("#rm-globs", "code/**")
        page.wait_for_selector('#rm-preview[data-files="2"]')
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.click("#rm-submit")  # the confirmation (data-confirm, ckptweb.js), declined
        assert asked == ["Delete the matching files from storage? This cannot be undone."]
        page.wait_for_load_state("networkidle")
        assert page.url.endswith(f"/checkpoints/{checkpoint.uuid}/")
        unchanged = Checkpoint.objects.get(pk=checkpoint.pk)
        assert unchanged.state == "COMPLETED" and unchanged.resources == checkpoint.resources
        pages.check("rm preview and confirmation")

        pages.open(f"/compare/?checkpoints={checkpoints[0].uuid},{checkpoints[1].uuid}")
        pages.open("/models/")
        pages.open("/storage/")
        pages.open("/admin/")
        pages.open("/admin/storage/storageconfig/")
        pages.open(f"/admin/storage/storageconfig/{spec_example.storage_id}/change/")
        page.select_option("#id_type", "s3")  # storage_admin.js shows the S3 fields
        assert page.locator(".form-row.field-bucket").first.is_visible()
        pages.check("admin storage form")
        pages.open("/admin/auth/user/")
        pages.open("/api/docs/")
        page.wait_for_selector(".swagger-ui .opblock")  # Swagger UI rendered the schema
        pages.check("API docs")
