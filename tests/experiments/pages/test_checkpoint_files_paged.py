"""The checkpoint page lists its files a page at a time (issue 25 item 9: a checkpoint of
100,000 files was one page of 32 MB of HTML in 8.5 s), and "Delete files…"'s live preview
names a bounded number of the matches."""

import re
from html import unescape

import pytest
from django.urls import reverse

from experiments.demo import checkpoint_root
from experiments.models import Checkpoint
from experiments.views.checkpoint_files import FILES_PAGE_SIZE, MAX_FILTER_LENGTH
from experiments.views.checkpoints import RM_PREVIEW_FILES
from tests.factories import report_with_files

pytestmark = pytest.mark.django_db

N = 100_000
PATHS = [f"shard{i // 1000:03}/part-{i % 1000:04}.bin" for i in range(N)]  # sorted already


@pytest.fixture
def huge(trial):
    """A checkpoint of ``N`` reported files, made in the database directly, on a storage
    that cannot list it (its directory is a file): the page shows the reported files."""
    checkpoint = Checkpoint.objects.create(
        trial=trial,
        steps_completed=100,
        resources={path: i for i, path in enumerate(PATHS)},
        size_bytes=sum(range(N)),
    )
    (checkpoint_root(trial.experiment.storage) / str(checkpoint.uuid)).write_bytes(b"")
    return checkpoint


def get(client, checkpoint, **params):
    return client.get(reverse("experiments:checkpoint", args=[checkpoint.uuid]), params)


def listed(response) -> list[str]:
    rows = re.findall(
        r'<tr class="file-row">\s*<td class="mono">(.*?)</td>', response.content.decode()
    )
    return [unescape(path) for path in rows]


def test_a_checkpoint_of_100000_files_is_one_bounded_page(alice_client, huge):
    response = get(alice_client, huge)

    html = response.content.decode()
    assert response.status_code == 200
    assert listed(response) == PATHS[:FILES_PAGE_SIZE]
    assert len(response.content) < 200_000
    assert "100,000 files" in html and "4.7 GiB" in html  # all of them, not the page's
    assert "as reported by training" in html and "Could not list the files" in html
    assert re.search(r'rel="next" href="\?page=2#files-card"', html)
    assert f"Page 1 of {N // FILES_PAGE_SIZE}" in html


def test_the_next_pages_follow_by_path_and_past_the_end_is_the_last(alice_client, huge):
    second = get(alice_client, huge, page="2")
    assert second.status_code == 200
    assert listed(second) == PATHS[FILES_PAGE_SIZE : 2 * FILES_PAGE_SIZE]
    assert 'rel="prev" href="?page=1#files-card"' in second.content.decode()

    for page in (str(N // FILES_PAGE_SIZE), str(N)):  # the last, and far past it
        last = get(alice_client, huge, page=page)
        assert last.status_code == 200
        assert listed(last) == PATHS[-FILES_PAGE_SIZE:]
        assert 'rel="next"' not in last.content.decode()


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "99999999", "٣", " 2"])
def test_a_page_that_is_not_a_number_is_a_400_naming_it(alice_client, huge, page):
    response = get(alice_client, huge, page=page)

    html = unescape(response.content.decode())
    assert response.status_code == 400
    assert "page: " in html and "is not a page number" in html
    assert listed(response) == PATHS[:FILES_PAGE_SIZE]  # the page still shows the first files


def test_the_filter_keeps_the_paths_containing_it_across_pages(alice_client, huge):
    response = get(alice_client, huge, q="SHARD042/", page="2")

    html = response.content.decode()
    assert response.status_code == 200
    wanted = [p for p in PATHS if p.startswith("shard042/")]
    assert listed(response) == wanted[FILES_PAGE_SIZE : 2 * FILES_PAGE_SIZE]
    assert "1,000 of 100,000 match" in html
    assert 'rel="next" href="?page=3&amp;q=SHARD042%2F#files-card"' in html

    nothing = get(alice_client, huge, q="no-such-file")
    assert listed(nothing) == [] and "No file path contains" in nothing.content.decode()
    too_long = get(alice_client, huge, q="x" * (MAX_FILTER_LENGTH + 1))
    assert too_long.status_code == 400
    assert f"q: at most {MAX_FILTER_LENGTH} characters" in too_long.content.decode()


def test_the_delete_files_preview_names_a_bounded_number_of_matches(alice_client, huge):
    url = reverse("experiments:checkpoint-rm-preview", args=[huge.uuid])

    response = alice_client.get(url, {"globs": "shard0*/**"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-files="100000"' in html and "100,000</strong> files" in html
    assert html.count('class="rm-path"') == RM_PREVIEW_FILES
    assert f"and {N - RM_PREVIEW_FILES:,} more files" in html
    assert len(response.content) < 100_000


def test_files_listed_from_storage_are_paged_with_their_downloads(
    alice_client, default_storage, trial
):
    names = [f"weights/part-{i:03}.bin" for i in range(FILES_PAGE_SIZE + 30)]
    checkpoint = report_with_files(
        default_storage, trial, 100, {"notes.txt": b"hello", **{n: b"w" for n in names}}
    )

    first, second = get(alice_client, checkpoint), get(alice_client, checkpoint, page="2")

    assert listed(first) == ["notes.txt", *names[: FILES_PAGE_SIZE - 1]]
    assert listed(second) == names[FILES_PAGE_SIZE - 1 :]
    html = first.content.decode()
    assert "listed from shared_fs storage" in html and "231 files" in html
    assert (
        html.count(f"/api/v1/checkpoints/{checkpoint.uuid}/files/weights/") == FILES_PAGE_SIZE - 1
    )
    assert 'class="code preview">hello</pre>' in html
