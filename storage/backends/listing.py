"""Streaming listings of a whole storage, one checkpoint directory at a time (for scans).

``iter_directories(backend)`` yields a ``ListedDirectory`` per top-level directory under
the storage's root/prefix, **sorted by name**, holding the files of that one directory only.
Object stores are listed with a single paginated listing of the whole prefix (one request
per 1,000 objects, not one per directory) whose keys come back in lexicographic order, so
consecutive keys are grouped by their first segment. On a shared file system only the
top-level *names* are sorted in memory; each directory is then walked on its own.

Memory is bounded by the largest directory (plus, on shared_fs, the top-level names),
never by the whole listing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from storage.backends.azure import AzureBackend
from storage.backends.base import StorageBackend, StorageError, StoredFile
from storage.backends.gcs import GCSBackend
from storage.backends.s3 import S3Backend
from storage.backends.shared_fs import SharedFSBackend, _is_within
from storage.paths import UnsafePath, check_relative_path

logger = logging.getLogger(__name__)


@dataclass
class ListedDirectory:
    """One top-level directory: its name, its files and the time it was last written to.

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


def iter_directories(backend: StorageBackend) -> Iterator[ListedDirectory]:
    """Every top-level directory of ``backend``'s storage, sorted by name, streamed."""
    if isinstance(backend, SharedFSBackend):
        return _iter_shared_fs(backend)
    if isinstance(backend, S3Backend):
        return _group_objects(_iter_s3_objects(backend), backend.base_prefix)
    if isinstance(backend, GCSBackend | AzureBackend):
        return _group_objects(_iter_blobs(backend), backend.base_prefix)
    raise StorageError(f"{type(backend).__name__} cannot list a whole storage")


# --- object stores ---------------------------------------------------------------------------


def _iter_s3_objects(backend: S3Backend) -> Iterator[tuple[str, int, float | None]]:
    """``(key, size, mtime)`` of every object under the prefix, in key order."""
    for page in backend.iter_objects(backend.base_prefix):
        for obj in page.get("Contents", []):
            modified = obj.get("LastModified")
            yield obj["Key"], int(obj.get("Size", 0)), modified.timestamp() if modified else None


def _iter_blobs(backend: GCSBackend | AzureBackend) -> Iterator[tuple[str, int, float | None]]:
    """``(name, size, mtime)`` of every GCS/Azure blob under the prefix, in name order."""
    for blob in backend.iter_blobs(backend.base_prefix):
        stored = backend._stored(blob, blob.name)
        yield blob.name, stored.size, stored.modified


def _group_objects(
    objects: Iterator[tuple[str, int, float | None]], base: str
) -> Iterator[ListedDirectory]:
    """Group a key-ordered object stream by the key's first segment under ``base``.

    Keys sharing a prefix ``<name>/`` are contiguous in lexicographic order, so a directory
    is complete as soon as a key outside it arrives. Objects directly under ``base`` (not
    in a directory) are ignored.
    """
    current: ListedDirectory | None = None
    for key, size, modified in objects:
        if not key.startswith(base):
            continue
        name, slash, relative = key[len(base) :].partition("/")
        if not slash or not name:
            continue
        if current is None or name != current.name:
            if current is not None:
                yield current
            current = ListedDirectory(name)
        current.touch(modified)
        if not relative or relative.endswith("/"):
            continue  # a "folder" marker object
        if is_safe_relative(relative):
            current.files.append(StoredFile(path=relative, size=size, modified=modified))
        else:
            current.unsafe += 1
    if current is not None:
        yield current


def is_safe_relative(relative: str) -> bool:
    """True when ``relative`` is already a normalised safe path (``check_relative_path``).

    Most keys pass the cheap test (no backslash, NUL, empty or dot-led segment); the rest
    go through the full check.
    """
    suspicious = ("\\", "\x00", "//", "/.")
    if not relative.startswith((".", "/")) and not any(s in relative for s in suspicious):
        return True
    try:
        return check_relative_path(relative) == relative
    except UnsafePath:
        return False


# --- shared file system ----------------------------------------------------------------------


def _iter_shared_fs(backend: SharedFSBackend) -> Iterator[ListedDirectory]:
    """Each directory under the root (symlinks excluded), walked one at a time, by name."""
    root = backend.root
    try:
        with os.scandir(root) as entries:
            names = sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot list {root}: {exc.strerror}") from None
    for name in names:
        listed = _walk_directory(os.path.join(root, name), name)
        if listed is not None:
            yield listed


def _walk_directory(base: str, name: str) -> ListedDirectory | None:
    """The files of one directory, walked with scandir; None if it vanished meanwhile.

    Symlinked files count only when they resolve inside the directory; symlinked
    directories are never entered.
    """
    listed = ListedDirectory(name)
    real_base = None
    pending = [base]
    while pending:
        dirpath = pending.pop()
        try:
            listed.touch(os.stat(dirpath).st_mtime)
            with os.scandir(dirpath) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                        continue
                    if entry.is_symlink():
                        real_base = real_base or os.path.realpath(base)
                        if not _is_within(os.path.realpath(entry.path), real_base):
                            listed.unsafe += 1
                            continue
                    try:
                        if not entry.is_file():
                            continue
                        stat = entry.stat()
                    except OSError:
                        continue  # dangling symlink, or removed meanwhile
                    relative = entry.path[len(base) + 1 :].replace(os.sep, "/")
                    listed.touch(stat.st_mtime)
                    listed.files.append(
                        StoredFile(path=relative, size=stat.st_size, modified=stat.st_mtime)
                    )
        except FileNotFoundError:
            if dirpath == base:
                return None
        except OSError as exc:
            raise StorageError(f"cannot list {dirpath}: {exc.strerror}") from None
    listed.files.sort(key=lambda stored: stored.path)
    return listed
