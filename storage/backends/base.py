"""The interface every storage backend implements, and the fields each one declares.

A backend is built from a StorageConfig and only ever touches ``<root>/<uuid>/``: every
relative path goes through ``ckptweb.lib.paths.check_relative_path`` before it is used, and
every checkpoint name through ``check_uuid``.

Each backend class declares the StorageConfig fields of its type (``parameters``), which
of them are required, secret (``sensitive_parameters``) or URLs that may carry credentials
(``url_parameters``), and ``parameter_errors`` checks a set of values against them. That
declaration is the only one: the admin form, redaction, ``StorageConfig.clean`` and the
experiment-config parser all read it (through ``storage.backends``).
"""

from __future__ import annotations

import abc
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ckptweb.lib.errors import ExternalError, TransientError
from ckptweb.lib.paths import UnsafePath
from storage.choices import StorageType

#: Size of one streamed read: big enough to be efficient, small enough to bound memory.
CHUNK_SIZE = 1024 * 1024
#: Marks an upload's part objects (GCS: ``<path>.ckptweb-part-NNNNN``); no file may carry it.
UPLOAD_PART_MARK = ".ckptweb-part-"


class StorageError(ExternalError):
    """A storage operation failed. The message never contains secrets."""


class TransientStorageError(StorageError, TransientError):
    """A failure worth retrying (connection refused, timeout, throttling, 5xx)."""


class FileNotFoundInStorage(StorageError):
    """The requested file does not exist in the checkpoint's directory."""


class DirectDownloadUnsupported(StorageError):
    """The storage cannot hand out URLs of its own: its files only come through the server."""


class UploadUnsupported(StorageError):
    """The storage takes no uploads this way (bytes through the server, or URLs of its own)."""


@dataclass(frozen=True)
class StoredFile:
    """One file of a checkpoint: path relative to ``<root>/<uuid>/``, size, mtime, etag."""

    path: str
    size: int
    modified: float | None = None  # POSIX timestamp
    etag: str | None = None


@dataclass
class ListedDirectory:
    """One top-level directory of a storage listing: its name, files and last write time.

    ``newest_modified`` is the latest mtime of its files (and, on a file system, of the
    directory itself and its subdirectories), a POSIX timestamp; None when unknown.
    ``files`` holds only safe relative paths; ``unsafe`` counts objects skipped for
    unsafe names (they still count towards ``newest_modified``).
    """

    name: str
    files: list[StoredFile] = field(default_factory=list)
    newest_modified: float | None = None
    unsafe: int = 0

    def touch(self, modified: float | None) -> None:
        """Record a write time, keeping the newest."""
        if modified is None:
            return
        if self.newest_modified is None or modified > self.newest_modified:
            self.newest_modified = modified

    @property
    def total_bytes(self) -> int:
        """Bytes of the directory's files."""
        return sum(stored.size for stored in self.files)


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

    #: The ``StorageConfig.type`` this class serves.
    storage_type: StorageType
    #: StorageConfig fields of this type, in form order; every other field stays blank.
    parameters: tuple[str, ...] = ()
    #: Those that must be set.
    required_parameters: tuple[str, ...] = ()
    #: Groups of parameters of which exactly one must be set.
    exclusive_parameters: tuple[tuple[str, ...], ...] = ()
    #: Write-only parameters: never rendered, returned, logged or quoted in an error.
    sensitive_parameters: tuple[str, ...] = ()
    #: URL parameters; credentials inside them (userinfo, a SAS query) count as secrets.
    url_parameters: tuple[str, ...] = ()

    def __init__(self, config):
        self.config = config

    @classmethod
    def parameter_errors(cls, values: dict[str, str]) -> dict[str, str]:
        """``{field: problem}`` for ``values`` (blank values count as unset) of this type.

        Problems are phrased after the field name, e.g. ``"is required for s3 storage."``;
        the caller prefixes the name (``bucket``, ``checkpoint_storage.bucket``). Never
        quotes a value, so secrets stay out of error text.
        """
        kind = cls.storage_type.value
        errors = {}
        for name in cls.required_parameters:
            if not values.get(name):
                errors[name] = f"is required for {kind} storage."
        for name, value in values.items():
            if value and name not in cls.parameters:
                errors[name] = f"does not apply to {kind} storage."
        for group in cls.exclusive_parameters:
            given = [name for name in group if values.get(name)]
            if len(given) != 1:
                names = " or ".join(group)
                problem = "give only one of" if given else "is required: give exactly one of"
                errors.setdefault(given[-1] if given else group[0], f"{problem} {names}.")
        for name in cls.url_parameters:
            url = values.get(name)
            if url and not url.startswith(("http://", "https://")):
                errors.setdefault(name, "must start with http:// or https://.")
        return errors

    def scrub(self, text: str) -> str:
        """``text`` with this config's secrets replaced by ``***``."""
        return self.config.scrub(str(text))

    @abc.abstractmethod
    def list_files(self, checkpoint_uuid: str) -> list[StoredFile]:
        """Every file under ``<root>/<uuid>/``, sorted by path; empty if none."""

    @abc.abstractmethod
    def list_directory(self, checkpoint_uuid: str) -> ListedDirectory:
        """What storage holds under ``<root>/<uuid>/``: its safe files and how many it skipped.

        The truth GC records after a fault: ``files`` as ``list_files`` returns them, and
        ``unsafe`` counts what is there but cannot be checked (an object whose key is not a
        safe relative path; on shared_fs a symlink leading out of the checkpoint), which a
        caller must not take for a deleted file.
        """

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

    @abc.abstractmethod
    def delete_files(self, checkpoint_uuid: str, paths: Iterable[str]) -> DeleteResult:
        """Delete some files of one checkpoint (partial deletion); report those that stay.

        ``object_errors`` maps each relative path that could not be deleted to its error,
        and ``errors[uuid]`` summarizes them; a path that was already absent counts as
        deleted. Every path goes through ``check_relative_path`` first.
        """

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

    #: Uploads come through the server (``write_range``), not to URLs of the store's own.
    uploads_through_server = False
    #: Every uploaded file goes in parts, small or not (Azure's block blobs).
    uploads_in_blocks = False
    #: ``complete`` needs the client's part ETags to assemble a file (S3); else the server
    #: knows the parts by their numbers (Azure's blocks, GCS's part objects).
    multipart_needs_etags = True

    def signed_put_url(
        self,
        checkpoint_uuid: str,
        path: str,
        expires_in: int,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> str:
        """A presigned PUT URL of one file, or of part ``part_number`` of multipart upload
        ``upload_id``; made locally, valid ``expires_in`` seconds."""
        raise UploadUnsupported(f"uploads to {self.config.type} storage are not available yet.")

    def start_multipart(self, checkpoint_uuid: str, path: str) -> str:
        """Start a multipart upload of one file (one request); its upload id."""
        raise UploadUnsupported(f"uploads to {self.config.type} storage are not available yet.")

    def complete_multipart(
        self, checkpoint_uuid: str, path: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Assemble a multipart upload from its ``(number, etag)`` parts."""
        raise UploadUnsupported(f"uploads to {self.config.type} storage are not available yet.")

    def abort_multipart(self, checkpoint_uuid: str, path: str, upload_id: str) -> None:
        """Abort a multipart upload, dropping its parts (one already gone is no error)."""
        raise UploadUnsupported(f"uploads to {self.config.type} storage are not available yet.")

    def uploaded_parts(
        self, checkpoint_uuid: str, path: str, upload_id: str
    ) -> dict[int, tuple[int, str]]:
        """The parts of multipart upload ``upload_id`` already on storage, ``{number: (size,
        etag)}``: a resumed upload sends only the others. None known by default."""
        return {}

    def write_range(self, checkpoint_uuid: str, path: str, offset: int, chunks: Iterable[bytes]):
        """Write ``chunks`` into one file from byte ``offset`` on (the file is cut there
        first, so a resumed upload overwrites what followed); return the file's new size.

        Uploads through the server (``storage.uploads``): shared_fs only. Object stores
        take uploads at presigned URLs of their own and raise UploadUnsupported.
        """
        raise UploadUnsupported(
            f"{self.config.type} storage takes uploads at its own URLs, not through the server."
        )

    @abc.abstractmethod
    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """Names of the top-level ``<uuid>/`` directories, streamed (for imports and scans).

        Every top-level directory name is yielded, UUID or not, so that a scan can report
        what it skipped and why.
        """

    @abc.abstractmethod
    def iter_directories(self) -> Iterator[ListedDirectory]:
        """Every top-level directory of the storage with its files, sorted by name, streamed.

        Memory is bounded by the largest directory (plus, on shared_fs, the top-level
        names), never by the whole listing: scans rely on it.
        """
