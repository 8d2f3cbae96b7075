"""An ``evil.html`` written by training code runs no script in an admin's browser.

The control case proves the detector works: the same payload served as plain same-origin
HTML (through Playwright's router, no ckptweb headers) does set its cookie.
"""

import uuid as uuid_lib
from pathlib import Path

import pytest

from experiments.models import Checkpoint, Experiment, Trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOAD = (
    "<html><body><h1>evil</h1><script>"
    "document.cookie = 'pwned=1; path=/';"
    "localStorage.setItem('pwned', '1');"
    "</script></body></html>"
)


@pytest.fixture
def evil_checkpoint(staff, default_storage):
    experiment = Experiment.objects.create(
        owner=staff, name="evil", searcher_metric="loss", storage=default_storage
    )
    trial = Trial.objects.create(experiment=experiment)
    checkpoint_uuid = uuid_lib.uuid4()
    files = {"evil.html": PAYLOAD, "evil.svg": PAYLOAD, "notes.txt": PAYLOAD}
    directory = Path(default_storage.host_path) / str(checkpoint_uuid)
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return Checkpoint.objects.create(
        trial=trial,
        uuid=checkpoint_uuid,
        steps_completed=1,
        state="COMPLETED",
        resources={name: len(text) for name, text in files.items()},
        size_bytes=sum(len(text) for text in files.values()),
    )


def pwned(session) -> bool:
    cookies = {c["name"] for c in session.page.context.cookies()}
    session.goto("/")
    stored = session.page.evaluate("() => localStorage.getItem('pwned')")
    return "pwned" in cookies or stored is not None


def test_the_detector_sees_a_script_that_runs(session, staff):
    session.login("staff")
    session.page.route(
        session.base_url + "/control.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=PAYLOAD),
    )
    session.goto("/control.html")
    assert pwned(session)


@pytest.mark.parametrize("name", ["evil.html", "evil.svg"])
def test_an_evil_file_downloads_and_runs_nothing(session, staff, evil_checkpoint, name):
    session.login("staff")
    url = f"{session.base_url}/api/v1/checkpoints/{evil_checkpoint.uuid}/files/{name}"
    with (
        session.page.expect_download() as download,
        pytest.raises(Exception, match="Download is starting"),
    ):
        session.page.goto(url)
    assert download.value.suggested_filename == name
    assert Path(download.value.path()).read_text() == PAYLOAD
    assert not pwned(session)


def test_html_in_a_text_file_shows_as_text(session, staff, evil_checkpoint):
    session.login("staff")
    session.goto(f"/api/v1/checkpoints/{evil_checkpoint.uuid}/files/notes.txt")
    assert "<script>" in session.page.inner_text("body")
    assert not pwned(session)
