"""Checkpoint downloads: a checkpoint's files, archives, direct URLs and the best checkpoint.

The checkpoint side of ``storage``: storage streams archives (``storage.archive``), signs URLs
(``storage.direct``) and reads files of a directory (``storage.services``), knowing nothing of
checkpoints; this module ties a checkpoint to its experiment's storage and refuses checkpoints
whose files are gone (``CheckpointGone``, a 410). The API (``experiments.api.downloads``), the
pages, the bulk actions and ``/det-compat/`` call it.

**Foldered archives** put files under named folders (one checkpoint, or a selection).
``checkpoint_folder`` names a checkpoint's folder ``<experiment>-trial<T>-step<S>-<uuid8>``
(the experiment name reduced to letters, digits, ``.``, ``_`` and ``-``), so ``tar xf`` or
unzip puts everything in one directory named after the checkpoint instead of scattering
files into the current one. ``FolderedArchive`` is a ``CheckpointArchive``
over several checkpoints: each archive path is ``<folder>/<relpath>`` and the opener maps
it back to the checkpoint's own storage, so the streaming archive code is reused unchanged.
The API's default layout stays relative to the checkpoint root (scripts rely on it); the
named folder is asked for with ``?folder=1`` and used by the dashboard's buttons.

**Direct downloads.** ``checkpoint_urls`` lists the checkpoint's files once and signs a URL per
file locally (``storage.direct``).

**Best checkpoint.** "Best" is retention's order (docs/architecture.md, "Retention"): by the
validation metric, ascending when ``smaller_is_better`` else descending, ties to fewer steps,
then the smaller id; only live checkpoints (the GC candidate states) with a metric qualify.
One indexed query. The pages offer it as ``#download-best``, the API as
``GET experiments/{id}/best-checkpoint[?trial=T]`` and the CLI as
``ckpt checkpoint download --best EXPERIMENT_ID [--trial T]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.db.models import F

from ckptweb.lib.errors import Gone
from ckptweb.lib.paths import check_relative_path
from experiments.choices import GC_CANDIDATE_STATES, GONE_STATES
from experiments.models import Checkpoint, Experiment, Trial
from storage import direct
from storage.archive import TarPlan, iter_archive
from storage.backends import get_backend
from storage.backends.base import FileNotFoundInStorage, StorageBackend, StoredFile
from storage.choices import StorageType
from storage.services import PREVIEW_LIMIT
from storage.services import read_text_preview as read_directory_preview


class CheckpointGone(Gone):
    """The checkpoint's files are deleted or being deleted."""


def checkpoint_backend(checkpoint) -> StorageBackend:
    """The backend of the storage the checkpoint's experiment writes to."""
    return get_backend(checkpoint.experiment.storage)


def ensure_downloadable(checkpoint) -> None:
    """Raise CheckpointGone when the checkpoint is DELETING or DELETED."""
    if checkpoint.state in GONE_STATES:
        raise CheckpointGone(
            f"Checkpoint {checkpoint.uuid} is {checkpoint.state.lower()}; its files are gone."
        )


def checkpoint_files(checkpoint) -> list[StoredFile]:
    """The checkpoint's files as they are in storage now, sorted by path."""
    return checkpoint_backend(checkpoint).list_files(str(checkpoint.uuid))


def stat_checkpoint_file(checkpoint, path: str) -> StoredFile:
    """Size, mtime and etag of one file. Raises UnsafePath or FileNotFoundInStorage."""
    return checkpoint_backend(checkpoint).stat(str(checkpoint.uuid), check_relative_path(path))


def open_checkpoint_file(checkpoint, path: str, start: int = 0, end: int | None = None):
    """A stream of bytes ``[start, end)`` of one file; the caller closes it."""
    relative = check_relative_path(path)
    return checkpoint_backend(checkpoint).open(str(checkpoint.uuid), relative, start, end)


def accel_redirect_uri(checkpoint, path: str) -> str | None:
    """Where nginx finds one file of a shared_fs checkpoint, or None to send it ourselves.

    Only with ``CKPTWEB_ACCEL_REDIRECT_PREFIX`` set (a deployment behind nginx with the
    matching ``internal`` location, README "Serving files through nginx"), and only for
    shared_fs. The path is the file's resolved absolute path (``file_path`` has refused
    anything resolving outside the checkpoint directory), percent-encoded.
    """
    prefix = settings.CKPTWEB_ACCEL_REDIRECT_PREFIX
    backend = checkpoint_backend(checkpoint)
    if not prefix or backend.storage_type != StorageType.SHARED_FS:
        return None
    resolved = os.path.realpath(backend.file_path(str(checkpoint.uuid), path))
    return prefix + quote(resolved.lstrip("/"))


def read_text_preview(checkpoint, path: str, limit: int = PREVIEW_LIMIT) -> str | None:
    """The text of one small text file of the checkpoint, else None (see storage.services)."""
    return read_directory_preview(checkpoint_backend(checkpoint), str(checkpoint.uuid), path, limit)


@dataclass
class CheckpointArchive:
    """What a download needs: the file list, an opener and the plain tar's layout."""

    checkpoint: object
    files: list[StoredFile]
    backend: StorageBackend

    @property
    def tar_plan(self) -> TarPlan:
        if not hasattr(self, "_plan"):
            self._plan = TarPlan(self.files)
        return self._plan

    def open(self, path: str, start: int, end: int):
        """Opener for archive generators."""
        return self.backend.open(str(self.checkpoint.uuid), path, start, end)

    def stream(self, fmt: str) -> Iterator[bytes]:
        """The whole archive in ``fmt`` (tar, tgz, zip)."""
        return iter_archive(fmt, self.files, self.open)

    def stream_tar_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the plain tar."""
        return self.tar_plan.iter_bytes(self.open, start, end)


def checkpoint_archive(checkpoint) -> CheckpointArchive:
    """Everything needed to stream the checkpoint as an archive. Raises StorageError."""
    backend = checkpoint_backend(checkpoint)
    files = backend.list_files(str(checkpoint.uuid))
    if not files:
        raise FileNotFoundInStorage(f"checkpoint {checkpoint.uuid} has no files in storage")
    return CheckpointArchive(checkpoint=checkpoint, files=files, backend=backend)


# --- foldered archives -----------------------------------------------------------------

UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 60


def safe_name(text: str, fallback: str = "experiment") -> str:
    """``text`` as a file or folder name: letters, digits, ``.``, ``_`` and ``-`` only."""
    return UNSAFE.sub("_", text).strip("._-")[:MAX_NAME] or fallback


def checkpoint_folder(checkpoint) -> str:
    """``resnet18-trial3-step5000-1a2b3c4d``: the folder a downloaded checkpoint unpacks to."""
    name = safe_name(checkpoint.experiment.name)
    return (
        f"{name}-trial{checkpoint.trial_id}-step{checkpoint.steps_completed}"
        f"-{str(checkpoint.uuid)[:8]}"
    )


class FolderedArchive(CheckpointArchive):
    """Several checkpoints' files, each checkpoint under its own folder.

    A ``CheckpointArchive`` whose opener maps ``<folder>/<relpath>`` back to the folder's
    checkpoint; its ``checkpoint`` is the first one (download logs name it).
    """

    def __init__(self, parts: dict[str, CheckpointArchive]):
        self.parts = parts  # folder -> that checkpoint's archive
        files = [
            StoredFile(f"{folder}/{f.path}", f.size, f.modified, f.etag)
            for folder, archive in parts.items()
            for f in archive.files
        ]
        first = next(iter(parts.values()))
        super().__init__(checkpoint=first.checkpoint, files=files, backend=first.backend)

    def open(self, path: str, start: int, end: int):
        """Opener for archive generators: ``<folder>/<relpath>`` of the folder's checkpoint."""
        folder, _, relative = path.partition("/")
        return self.parts[folder].open(relative, start, end)


def foldered_archive(checkpoints) -> FolderedArchive:
    """The archive of ``checkpoints`` (each must be downloadable). Raises StorageError."""
    return FolderedArchive({checkpoint_folder(c): checkpoint_archive(c) for c in checkpoints})


# --- direct downloads ----------------------------------------------------------------------


def checkpoint_urls(
    checkpoint, expires_in: int = direct.DEFAULT_EXPIRES
) -> list[direct.DirectFile]:
    """A presigned URL for every file of the checkpoint, sorted by path.

    Raises CheckpointGone (deleted), DirectDownloadUnsupported (shared_fs, or credentials
    that cannot sign), FileNotFoundInStorage (no files) or another StorageError.
    """
    ensure_downloadable(checkpoint)
    return direct.signed_manifest(checkpoint_backend(checkpoint), str(checkpoint.uuid), expires_in)


def checkpoint_file_url(checkpoint, path: str, expires_in: int = direct.DEFAULT_EXPIRES) -> str:
    """A presigned URL of one existing file (checked with one stat request)."""
    ensure_downloadable(checkpoint)
    return direct.signed_file_url(
        checkpoint_backend(checkpoint), str(checkpoint.uuid), path, expires_in
    )


# --- the best checkpoint -------------------------------------------------------------------


def best_checkpoint(experiment: Experiment, trial: Trial | int | None = None) -> Checkpoint | None:
    """The best downloadable checkpoint of ``experiment`` (of one ``trial``), or None."""
    rows = Checkpoint.objects.filter(
        experiment=experiment, state__in=GC_CANDIDATE_STATES, validation_metric__isnull=False
    )
    if trial is not None:
        rows = rows.filter(trial=trial)
    metric = F("validation_metric")
    order = metric.asc() if experiment.smaller_is_better else metric.desc()
    return rows.select_related("trial").order_by(order, "steps_completed", "id").first()
