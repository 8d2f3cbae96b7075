"""Helpers of the browser tests: a page session with screenshots and console errors, signing
in, and waiting for a GC run (the fixtures ``browser`` and ``session`` are in conftest.py)."""

import contextlib
from pathlib import Path

from django.conf import settings

from tests.factories import password_for
from tests.servers import wait_for

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


class Session:
    """A browser page with the live server's address, console error log and screenshots."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.set_default_timeout(10_000)

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({self.page.url})")

    def goto(self, path: str):
        response = self.page.goto(self.base_url + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def login(self, username: str, password: str | None = None):
        sign_in(self.page, self.base_url, username, password)

    def screenshot(self, name: str):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base_url: str, username: str, password: str | None = None) -> None:
    """Sign in through the login form as ``username`` (with the persona's password unless
    ``password`` is given), landing on the experiments list."""
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or password_for(username))
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def signed_in_page(browser, base_url: str, username: str, width: int, height: int = 900):
    """A page of a new browser context ``width`` x ``height``, signed in as ``username``;
    close it with ``page.context.close()``."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    sign_in(page, base_url, username)
    return page


@contextlib.contextmanager
def browser_session(browser, base_url: str, width=1366, height=900, clipboard=False, **options):
    """A Session in a new browser context ``width`` x ``height`` (``clipboard``: allowed to
    read and write it); closed at the end, failing the test on console errors."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    if clipboard:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    current = Session(context.new_page(), base_url)
    try:
        yield current
    finally:
        context.close()
    assert not current.errors, "\n".join(current.errors)


def finish_gc(run, timeout: float = 60):
    """Wait until GC run ``run`` has finished: run eagerly, or by a worker another test
    module started (tests/experiments keeps real Celery workers for the session)."""
    from experiments.models import GCRun

    finished = GCRun.objects.filter(pk=run.pk, finished_at__isnull=False)
    wait_for(finished.exists, timeout, f"GC run {run.pk} to finish")
