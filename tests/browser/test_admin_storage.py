"""The admin's storage form in Chromium: only the chosen type's fields, a visible test button."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def visible(page, field: str) -> bool:
    return page.locator(f".form-row.field-{field}").first.is_visible()


def test_the_form_follows_the_type_and_tests_the_connection(session, staff, default_storage):
    page = session.page
    session.login("staff")
    session.goto(f"/admin/storage/storageconfig/{default_storage.pk}/change/")
    assert visible(page, "host_path") and visible(page, "storage_path")
    assert not visible(page, "bucket") and not visible(page, "access_key")
    assert "absolute directory on the server" in page.locator(".field-host_path").inner_text()
    page.select_option("#id_type", "s3")
    assert visible(page, "bucket") and visible(page, "endpoint_url") and visible(page, "secret_key")
    assert not visible(page, "host_path")
    page.select_option("#id_type", "gcs")
    assert visible(page, "bucket") and not visible(page, "endpoint_url")
    page.select_option("#id_type", "shared_fs")
    session.screenshot("admin-storage")

    button = page.locator("#test-connection")
    assert button.is_visible()
    button.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/storage/storageconfig/{default_storage.pk}/change/")
    assert page.locator(".messagelist .success").count() == 1


def test_every_page_has_the_favicon(session, staff):
    session.login("staff")
    for path in ("/", "/admin/"):
        session.goto(path)
        href = session.page.get_attribute('link[rel="icon"]', "href")
        assert href.endswith("favicon.svg")
    response = session.page.request.get(session.base_url + "/favicon.ico")
    assert response.ok and "<svg" in response.text()
