"""The interface every storage backend implements.

A backend is built from a StorageConfig and only ever touches ``<root>/<uuid>/``: every
relative path goes through ``storage.paths.check_relative_path`` before it is used, and
every checkpoint name through ``check_uuid``.
"""

from __future__ import annotations

import abc
import logging
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from storage.paths import UnsafePath, check_relative_path

logger = logging.getLogger(__name__)

#: Size of one streamed read: big enough to be efficient, small enough to bound memory.
CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """A storage operation failed. The message never contains secrets."""


class TransientStorageError(StorageError):
    """A failure worth retrying (connection refused, timeout, throttling, 5xx)."""


class FileNotFoundInStorage(StorageError):
    """The requested file does not exist in the checkpoint's directory."""


class DirectDownloadUnsupported(StorageError):
    """The storage cannot hand out URLs of its own: its files only come through the server."""


@dataclass(frozen=True)
class StoredFile:
    """One file of a checkpoint: path relative to ``<root>/<uuid>/``, size, mtime, etag."""

    path: str
    size: int
    modified: float | None = None  # POSIX timestamp
    etag: str | None = None


@dataclass
class DeleteResult:
    """Outcome of deleting checkpoints' files: per-checkpoint errors, empty when all went.

    ``errors`` maps a checkpoint uuid to a one-line summary; ``object_errors`` maps each
    object key (or relative file path) that could not be deleted to its error.
    ``requests`` counts the delete requests sent (batches on S3 and GCS).
    """

    errors: dict[str, str] = field(default_factory=dict)  # checkpoint uuid -> error text
    deleted_files: int = 0
    requests: int = 0
    object_errors: dict[str, str] = field(default_factory=dict)  # key -> error text

    @property
    def ok(self) -> bool:
        """True when every requested checkpoint's files are gone."""
        return not self.errors


def check_uuid(value) -> str:
    """Return ``value`` as a canonical lowercase UUID string, else raise UnsafePath.

    Only the canonical ``8-4-4-4-12`` spelling is accepted, so a directory name such as
    ``{...}`` or ``urn:uuid:...`` never maps onto a checkpoint.
    """
    text = str(value)
    try:
        canonical = str(uuid_lib.UUID(text))
    except ValueError:
        raise UnsafePath(f"{text[:80]!r} is not a checkpoint UUID") from None
    if canonical != text.lower():
        raise UnsafePath(f"{text[:80]!r} is not a canonical checkpoint UUID")
    return canonical


def summarize_object_errors(object_errors: dict[str, str], total: int) -> str:
    """One line for a checkpoint whose deletion failed on some objects."""
    first_key, first_error = next(iter(object_errors.items()))
    return (
        f"{len(object_errors)} of {total} file(s) could not be deleted, "
        f"e.g. {first_key}: {first_error}"
    )


class StreamReader:
    """A read-only stream of exactly ``length`` bytes pulled from ``read(n)`` calls.

    Wraps a backend's body (an HTTP response, a file) so callers see one contract:
    ``read(n)`` returns at most ``n`` bytes, ``b""`` at the end; a body that ends early
    raises StorageError rather than silently truncating a download. ``translate`` maps
    a backend's exception to a StorageError.
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        length: int,
        close: Callable[[], None] | None = None,
        translate: Callable[[Exception], StorageError] | None = None,
        name: str = "",
    ):
        self._read = read
        self._close = close
        self._translate = translate
        self.remaining = length
        self.length = length
        self.label = name
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all remaining when negative); ``b""`` at the end."""
        if self.remaining <= 0:
            return b""
        wanted = self.remaining if size is None or size < 0 else min(size, self.remaining)
        try:
            data = self._read(wanted)
        except StorageError:
            raise
        except Exception as exc:
            if self._translate is None:
                raise
            raise self._translate(exc) from None
        if not data:
            raise StorageError(f"{self.label or 'file'} ended {self.remaining} bytes early")
        self.remaining -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        """Chunks of CHUNK_SIZE bytes until the end."""
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        """Release the underlying body; safe to call twice."""
        if not self.closed:
            self.closed = True
            if self._close is not None:
                self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def clamp_range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """``[start, end)`` limited to a file of ``size`` bytes (end None means EOF)."""
    end = size if end is None else min(end, size)
    start = min(max(start, 0), end)
    return start, end


class StorageBackend(abc.ABC):
    """Operations on one StorageConfig's checkpoint directories."""

    #: StorageConfig fields this backend uses, and those of them that are secret.
    parameters: tuple[str, ...] = ()
    sensitive_parameters: tuple[str, ...] = ()

    def __init__(self, config):
        self.config = config

    @staticmethod
    def relative_path(path: str) -> str:
        """``path`` normalised if it stays inside a checkpoint directory, else UnsafePath."""
        return check_relative_path(path)

    def scrub(self, text: str) -> str:
        """``text`` with this config's secrets replaced by ``***``."""
        return self.config.scrub(str(text))

    @abc.abstractmethod
    def list_files(self, checkpoint_uuid: str) -> list[StoredFile]:
        """Every file under ``<root>/<uuid>/``, sorted by path; empty if none."""

    @abc.abstractmethod
    def stat(self, checkpoint_uuid: str, path: str) -> StoredFile:
        """Size, mtime and etag of one file; raises FileNotFoundInStorage when absent."""

    @abc.abstractmethod
    def open(
        self, checkpoint_uuid: str, path: str, start: int = 0, end: int | None = None
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

    def delete_files(self, checkpoint_uuid: str, paths: Iterable[str]) -> DeleteResult:
        """Delete some files of one checkpoint (partial deletion); report those that stay.

        ``object_errors`` maps each relative path that could not be deleted to its error,
        and ``errors[uuid]`` summarizes them; a path that was already absent counts as
        deleted. Every path goes through ``relative_path`` first.
        """
        raise StorageError(f"{type(self).__name__} cannot delete single files")

    @abc.abstractmethod
    def check_connection(self) -> None:
        """Cheap reachability check; raises StorageError with a secret-free message."""

    def signed_url(self, checkpoint_uuid: str, path: str, expires_in: int) -> str:
        """A presigned GET URL of one file, valid ``expires_in`` seconds, made locally.

        Signing needs no request to the store. Raises DirectDownloadUnsupported where the
        storage has no URLs (shared_fs) or the credentials cannot sign.
        """
        raise DirectDownloadUnsupported(
            f"{self.config.type} storage has no direct URLs: its files are only reachable "
            "through the server (use the download or files routes)."
        )

    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """Names of the top-level ``<uuid>/`` directories, streamed (for imports and scans).

        Every top-level directory name is yielded, UUID or not, so that a scan can report
        what it skipped and why.
        """
        raise NotImplementedError


class ObjectStoreBackend(StorageBackend):
    """Shared parts of the object-store backends (S3, GCS): keys ``<prefix>/<uuid>/<path>``."""

    @property
    def base_prefix(self) -> str:
        """``<prefix>/`` (checked), or empty for the bucket root."""
        prefix = self.config.prefix.strip("/")
        return f"{check_relative_path(prefix)}/" if prefix else ""

    def checkpoint_prefix(self, checkpoint_uuid) -> str:
        """``<prefix>/<uuid>/``."""
        return f"{self.base_prefix}{check_uuid(checkpoint_uuid)}/"

    def object_key(self, checkpoint_uuid, path: str) -> str:
        """``<prefix>/<uuid>/<path>`` for a checked relative path."""
        return self.checkpoint_prefix(checkpoint_uuid) + check_relative_path(path)

    def delete_objects(self, keys: list[str]) -> dict[str, str]:
        """One batch delete request; ``{key: error}`` for the keys the store refused."""
        raise NotImplementedError

    def delete_files(self, checkpoint_uuid: str, paths: Iterable[str]) -> DeleteResult:
        """Delete the objects of ``paths`` in batches of ``delete_batch_size`` keys."""
        result = DeleteResult()
        name = str(checkpoint_uuid)
        keys: dict[str, str] = {}  # key -> relative path
        try:
            for path in paths:
                keys[self.object_key(name, path)] = path
        except UnsafePath as exc:
            result.errors[name] = str(exc)
            return result
        ordered = list(keys)
        for start in range(0, len(ordered), self.delete_batch_size):
            batch = ordered[start : start + self.delete_batch_size]
            result.requests += 1
            try:
                failures = self.delete_objects(batch)
            except StorageError as exc:
                failures = dict.fromkeys(batch, str(exc))
            result.deleted_files += len(batch) - len(failures)
            result.object_errors.update({keys[key]: error for key, error in failures.items()})
        if result.object_errors:
            result.errors[name] = summarize_object_errors(result.object_errors, len(keys))
        return result

    @staticmethod
    def _safe_relative(name: str, prefix: str) -> str | None:
        """The name relative to the checkpoint prefix, or None for markers and unsafe names."""
        relative = name[len(prefix) :]
        if not name.startswith(prefix) or not relative or relative.endswith("/"):
            return None
        try:
            if check_relative_path(relative) == relative:
                return relative
        except UnsafePath:
            pass
        logger.warning("Skipping object %r: not a safe relative path", name)
        return None

    def _summarize(self, result: DeleteResult, totals: dict[str, int]) -> None:
        """Fold per-object errors into one line per checkpoint."""
        for checkpoint_uuid, total in totals.items():
            if checkpoint_uuid in result.errors:
                continue
            prefix = self.checkpoint_prefix(checkpoint_uuid)
            failed = {
                name[len(self.base_prefix) :]: error
                for name, error in result.object_errors.items()
                if name.startswith(prefix)
            }
            if failed:
                result.errors[checkpoint_uuid] = summarize_object_errors(failed, total)
