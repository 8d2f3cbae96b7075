"""What the checkpoint pages show of a checkpoint's files: rows, downloads, format, snippet.

Files are listed by the checkpoint's storage (``experiments.downloads.checkpoint_files``); when
storage cannot be listed the page falls back to the reported ``resources`` and says so, and
a DELETED checkpoint lists nothing. Small text files get an inline preview (at most
``PREVIEW_MAX_FILES`` of at most ``PREVIEW_MAX_BYTES``). Download links are the storage
app's archive routes; the model format is detected from the file names
(``experiments.views.snippets``) and offered as a quoted load snippet.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from experiments.choices import GONE_STATES, CheckpointState
from experiments.downloads import best_checkpoint, checkpoint_files, read_text_preview
from experiments.models import Checkpoint, Experiment, Trial
from experiments.views.snippets import detect_format, load_snippet
from storage.services import is_text_file

PREVIEW_MAX_BYTES = 64 * 1024
PREVIEW_MAX_FILES = 4


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


def checkpoint_file_rows(checkpoint: Checkpoint) -> dict:
    """The checkpoint's files as listed by its storage, with download links and previews.

    Falls back to the reported ``resources`` when storage cannot be listed (the page says
    so), and lists nothing for a DELETED checkpoint whose files are gone.
    """
    if checkpoint.state == CheckpointState.DELETED:
        return {"files": [], "source": "deleted", "error": None}
    error, source = None, "storage"
    try:
        stored = [(f.path, f.size) for f in checkpoint_files(checkpoint)]
    except Exception as exc:  # a storage outage must not take the page down
        error = checkpoint.experiment.storage.scrub(str(exc)) or exc.__class__.__name__
        source = "reported"
        stored = sorted((checkpoint.resources or {}).items())
    rows, previews = [], 0
    for path, size in stored:
        preview = url = None
        if source == "storage":
            url = _url_or_none("checkpoint-file", checkpoint.uuid, path)
            if previews < PREVIEW_MAX_FILES and is_text_file(path) and size <= PREVIEW_MAX_BYTES:
                preview = _preview(checkpoint, path)
                previews += preview is not None
        rows.append(FileRow(path, size, url, preview))
    return {"files": rows, "source": source, "error": error}


def model_format_and_snippet(checkpoint: Checkpoint, files: dict, download: dict, absolute):
    """``(format, snippet)`` of the checkpoint page; ``absolute`` makes a URL absolute.

    The format is detected from the listed file names; the snippet needs downloadable files.
    """
    model_format = detect_format([f.path for f in files["files"]])
    snippet = None
    if model_format and download["available"]:
        snippet = load_snippet(model_format, checkpoint, absolute(download["tar_root"]))
    return model_format, snippet


def best_download(experiment: Experiment, trial: Trial | None = None) -> dict | None:
    """The best live checkpoint (``experiments.downloads``) and its archive links, or None."""
    checkpoint = best_checkpoint(experiment, trial)
    return checkpoint and {"checkpoint": checkpoint, **download_links(checkpoint)}
