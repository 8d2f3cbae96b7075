"""Archives whose files sit under named folders: one checkpoint, or a selection of them.

``checkpoint_folder`` names a checkpoint's folder ``<experiment>-trial<T>-step<S>-<uuid8>``
(the experiment name reduced to letters, digits, ``.``, ``_`` and ``-``), so ``tar xf`` or
unzip puts everything in one directory named after the checkpoint instead of scattering
files into the current one. ``FolderedArchive`` offers the interface of
``services.CheckpointArchive`` (``files``, ``tar_plan``, ``stream``, ``stream_tar_range``)
over several checkpoints: each archive path is ``<folder>/<relpath>`` and the opener maps it
back to the checkpoint's own storage, so the streaming archive code is reused unchanged.
The API's default layout stays relative to the checkpoint root (scripts rely on it); the
named folder is asked for with ``?folder=1`` and used by the dashboard's buttons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from storage.archive import TarPlan, iter_archive
from storage.backends.base import StoredFile
from storage.services import CheckpointArchive, checkpoint_archive

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


@dataclass
class FolderedArchive:
    """Several checkpoints' files, each checkpoint under its own folder."""

    parts: dict[str, CheckpointArchive]  # folder -> that checkpoint's archive
    files: list[StoredFile] = field(init=False)

    def __post_init__(self):
        self.files = [
            StoredFile(f"{folder}/{f.path}", f.size, f.modified, f.etag)
            for folder, archive in self.parts.items()
            for f in archive.files
        ]

    @property
    def checkpoint(self):
        """The first checkpoint (download logs name it)."""
        return next(iter(self.parts.values())).checkpoint

    @property
    def tar_plan(self) -> TarPlan:
        if not hasattr(self, "_plan"):
            self._plan = TarPlan(self.files)
        return self._plan

    def open(self, path: str, start: int, end: int):
        """Opener for archive generators: ``<folder>/<relpath>`` of the folder's checkpoint."""
        folder, _, relative = path.partition("/")
        return self.parts[folder].open(relative, start, end)

    def stream(self, fmt: str) -> Iterator[bytes]:
        """The whole archive in ``fmt`` (tar, tgz, zip)."""
        return iter_archive(fmt, self.files, self.open)

    def stream_tar_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the plain tar."""
        return self.tar_plan.iter_bytes(self.open, start, end)


def foldered_archive(checkpoints) -> FolderedArchive:
    """The archive of ``checkpoints`` (each must be downloadable). Raises StorageError."""
    return FolderedArchive({checkpoint_folder(c): checkpoint_archive(c) for c in checkpoints})
