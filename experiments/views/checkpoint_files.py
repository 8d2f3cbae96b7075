"""What the checkpoint pages show of a checkpoint's files: rows, downloads, format, snippet.

Files are listed by the checkpoint's storage (``experiments.downloads.checkpoint_files``); when
storage cannot be listed the page falls back to the reported ``resources`` and says so, and
a DELETED checkpoint lists nothing. The page shows ``FILES_PAGE_SIZE`` of them at a time, by
path, with the count and bytes of all of them (a sharded checkpoint may hold 100,000 files:
one page of them all was 32 MB of HTML); ``?q=`` keeps the paths containing a text and
``?page=`` picks the page. A page number that is not one is a 400 naming ``page``; a page
past the end shows the last page (files may have been deleted since the link was made).
Small text files of the page get an inline preview (at most ``PREVIEW_MAX_FILES`` of at
most ``PREVIEW_MAX_BYTES``). Download links are the storage app's archive routes; the model
format is detected from all the file names (``experiments.views.snippets``) and offered as
a quoted load snippet.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.urls import NoReverseMatch, reverse

from experiments.choices import GONE_STATES, CheckpointState
from experiments.downloads import best_checkpoint, checkpoint_files, read_text_preview
from experiments.models import Checkpoint, Experiment, Trial
from experiments.views.snippets import detect_format, load_snippet
from storage.services import is_text_file

PREVIEW_MAX_BYTES = 64 * 1024
PREVIEW_MAX_FILES = 4
#: Files one page of the checkpoint page lists.
FILES_PAGE_SIZE = 200
#: Longest ``?q=`` (text a listed path contains).
MAX_FILTER_LENGTH = 200
#: Digits a ``?page=`` may have (a million pages of 200 is past any checkpoint).
MAX_PAGE_DIGITS = 7


class FilesPageError(ValueError):
    """``?page=`` or ``?q=`` is unusable; the message names the parameter."""


@dataclass(frozen=True)
class ListedFiles:
    """Every file of a checkpoint, ``(path, size)`` by path, and where the list came from:
    ``storage``, ``reported`` (storage could not be listed: ``error`` says why) or
    ``deleted``."""

    files: list[tuple[str, int]]
    source: str
    error: str | None = None


@dataclass(frozen=True)
class FileRow:
    """A file of a checkpoint as the page lists it."""

    path: str
    size: int
    url: str | None = None
    preview: str | None = None


def _url_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def download_links(checkpoint: Checkpoint) -> dict:
    """Archive download URLs of the storage app's routes; not available once files go.

    The buttons' archives unpack into one named folder (``?folder=1``, ``experiments.downloads``);
    ``tar_root`` is the API's default layout, relative to the checkpoint root, for scripts.
    """
    base = _url_or_none("checkpoint-download", checkpoint.uuid)
    links = {
        fmt: f"{base}?format={fmt}&folder=1" if base else None for fmt in ("tar", "tgz", "zip")
    }
    links["tar_root"] = f"{base}?format=tar" if base else None
    return links | {"available": bool(base) and checkpoint.state not in GONE_STATES}


def _preview(checkpoint: Checkpoint, path: str) -> str | None:
    try:
        return read_text_preview(checkpoint, path)
    except Exception:  # a preview is optional
        return None


def listed_files(checkpoint: Checkpoint) -> ListedFiles:
    """The checkpoint's files as listed by its storage, sorted by path.

    Falls back to the reported ``resources`` when storage cannot be listed (the page says
    so), and lists nothing for a DELETED checkpoint whose files are gone.
    """
    if checkpoint.state == CheckpointState.DELETED:
        return ListedFiles([], "deleted")
    try:
        return ListedFiles([(f.path, f.size) for f in checkpoint_files(checkpoint)], "storage")
    except Exception as exc:  # a storage outage must not take the page down
        error = checkpoint.experiment.storage.scrub(str(exc)) or exc.__class__.__name__
        return ListedFiles(sorted((checkpoint.resources or {}).items()), "reported", error)


def page_number(raw: str | None) -> int:
    """``?page=`` as a number from 1 (1 when absent); FilesPageError names it otherwise."""
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_PAGE_DIGITS or int(raw) < 1:
        raise FilesPageError(f"page: {raw[:20]!r} is not a page number (1, 2, 3, …).")
    return int(raw)


def file_filter(raw: str | None) -> str:
    """``?q=``, stripped; FilesPageError past ``MAX_FILTER_LENGTH`` characters."""
    text = (raw or "").strip()
    if len(text) > MAX_FILTER_LENGTH:
        raise FilesPageError(f"q: at most {MAX_FILTER_LENGTH} characters.")
    return text


def checkpoint_file_page(checkpoint: Checkpoint, listed: ListedFiles, number=1, query="") -> dict:
    """One page of ``listed`` for the template: its rows (with download links and up to
    ``PREVIEW_MAX_FILES`` previews), the paginator's page, and the count and bytes of all
    the files and of those whose path contains ``query`` (case-insensitive).

    A ``number`` past the last page gives the last page.
    """
    matching = listed.files
    if query:
        needle = query.casefold()
        matching = [f for f in listed.files if needle in f[0].casefold()]
    paginator = Paginator(matching, FILES_PAGE_SIZE)
    page = paginator.page(min(number, paginator.num_pages))
    rows, previews = [], 0
    for path, size in page.object_list:
        preview = url = None
        if listed.source == "storage":
            url = _url_or_none("checkpoint-file", checkpoint.uuid, path)
            if previews < PREVIEW_MAX_FILES and is_text_file(path) and size <= PREVIEW_MAX_BYTES:
                preview = _preview(checkpoint, path)
                previews += preview is not None
        rows.append(FileRow(path, size, url, preview))
    return {
        "files": rows,
        "page": page,
        "query": query,
        "source": listed.source,
        "error": listed.error,
        "total": len(listed.files),
        "bytes": sum(size for _, size in listed.files),
        "matched": len(matching),
        "max_filter": MAX_FILTER_LENGTH,
    }


def model_format_and_snippet(checkpoint: Checkpoint, listed: ListedFiles, download: dict, absolute):
    """``(format, snippet)`` of the checkpoint page; ``absolute`` makes a URL absolute.

    The format is detected from all the listed file names (not only the page's); the
    snippet needs downloadable files.
    """
    model_format = detect_format([path for path, _ in listed.files])
    snippet = None
    if model_format and download["available"]:
        snippet = load_snippet(model_format, checkpoint, absolute(download["tar_root"]))
    return model_format, snippet


def best_download(experiment: Experiment, trial: Trial | None = None) -> dict | None:
    """The best live checkpoint (``experiments.downloads``) and its archive links, or None."""
    checkpoint = best_checkpoint(experiment, trial)
    return checkpoint and {"checkpoint": checkpoint, **download_links(checkpoint)}
