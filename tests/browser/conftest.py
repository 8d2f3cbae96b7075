"""Chromium through Playwright against pytest-django's live_server.

Skips (or fails under CKPTWEB_REQUIRE_SERVICES=1) when /usr/bin/chromium is missing.
Every page a test opens is screenshotted to var/screenshots/ and checked for console errors
(``Session`` and the other helpers are in helpers.py).
"""

import os

import pytest

from tests.browser.helpers import browser_session
from tests.servers import missing_service

CHROMIUM = "/usr/bin/chromium"
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


@pytest.fixture
def session(browser, live_server):
    """A fresh browser context on the live server; fails the test on console errors."""
    with browser_session(browser, live_server.url, accept_downloads=True) as current:
        yield current
