"""The interface every storage backend implements.

A backend is built from a StorageConfig and only ever touches ``<root>/<uuid>/``: every
relative path goes through ``storage.paths.check_relative_path`` before it is used.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO


class StorageError(Exception):
    """A storage operation failed. The message never contains secrets."""


class TransientStorageError(StorageError):
    """A failure worth retrying (connection refused, timeout, throttling, 5xx)."""


class FileNotFoundInStorage(StorageError):
    """The requested file does not exist in the checkpoint's directory."""


@dataclass(frozen=True)
class StoredFile:
    """One file of a checkpoint: path relative to ``<root>/<uuid>/``, size, mtime, etag."""

    path: str
    size: int
    modified: float | None = None  # POSIX timestamp
    etag: str | None = None


@dataclass
class DeleteResult:
    """Outcome of deleting checkpoints' files: per-checkpoint errors, empty when all went."""

    errors: dict[str, str] = field(default_factory=dict)  # checkpoint uuid -> error text
    deleted_files: int = 0
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


class StorageBackend(abc.ABC):
    """Operations on one StorageConfig's checkpoint directories."""

    #: StorageConfig fields this backend uses, and those of them that are secret.
    parameters: tuple[str, ...] = ()
    sensitive_parameters: tuple[str, ...] = ()

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def list_files(self, checkpoint_uuid: str) -> list[StoredFile]:
        """Every file under ``<root>/<uuid>/``, sorted by path; empty if none."""

    @abc.abstractmethod
    def open(self, checkpoint_uuid: str, path: str, start: int = 0, end: int | None = None
             ) -> BinaryIO:
        """A file-like object streaming bytes ``[start, end)`` of one file (end None = EOF).

        Raises FileNotFoundInStorage when the file is absent.
        """

    @abc.abstractmethod
    def delete_checkpoints(self, checkpoint_uuids: Iterable[str]) -> DeleteResult:
        """Delete every file of each checkpoint, in batches; report per-checkpoint errors.

        A checkpoint whose files are all gone afterwards (including one that had none) is
        not in ``errors``.
        """

    @abc.abstractmethod
    def check_connection(self) -> None:
        """Cheap reachability check; raises StorageError with a secret-free message."""

    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """Names of the top-level ``<uuid>/`` directories, streamed (for imports and scans)."""
        raise NotImplementedError
