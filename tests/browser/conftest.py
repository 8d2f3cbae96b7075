"""Chromium through Playwright against pytest-django's live_server.

Skips (or fails under CKPTWEB_REQUIRE_SERVICES=1) when /usr/bin/chromium is missing.
Every page a test opens is screenshotted to var/screenshots/ and checked for console errors.
"""

import contextlib
import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import password_for
from tests.servers import missing_service, wait_for

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser(django_db_setup, django_db_blocker):
    """One headless Chromium per test module, started after the test database exists.

    Playwright's sync API keeps an event loop in this thread, so Django's async-safety
    check would refuse the (plain synchronous) ORM calls of the tests and of database
    teardown; it is switched off while the browser runs and restored after.
    """
    if not os.path.exists(CHROMIUM):
        missing_service(f"Chromium not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("playwright (Python) is not installed")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


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


@pytest.fixture
def session(browser, live_server):
    """A fresh browser context on the live server; fails the test on console errors."""
    with browser_session(browser, live_server.url, accept_downloads=True) as current:
        yield current


def finish_gc(run, timeout: float = 60):
    """Wait until GC run ``run`` has finished: run eagerly, or by a worker another test
    module started (tests/gc keeps real Celery workers for the session)."""
    from experiments.models import GCRun

    finished = GCRun.objects.filter(pk=run.pk, finished_at__isnull=False)
    wait_for(finished.exists, timeout, f"GC run {run.pk} to finish")
