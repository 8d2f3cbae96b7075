"""Checkpoints on a shared file system: ``host_path[/storage_path]/<uuid>/<relpath>``."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ckptweb.lib.paths import UnsafePath, check_relative_path
from storage.backends.base import (
    DeleteResult,
    FileNotFoundInStorage,
    ListedDirectory,
    StorageBackend,
    StorageError,
    StoredFile,
    StreamReader,
    check_uuid,
    clamp_range,
    summarize_object_errors,
)
from storage.choices import StorageType

logger = logging.getLogger(__name__)


def _is_within(path: str, directory: str) -> bool:
    """True when the real ``path`` lies inside the real ``directory``."""
    return os.path.commonpath([path, directory]) == directory


class SharedFSBackend(StorageBackend):
    """A directory tree mounted on this host; symlinks never lead out of a checkpoint."""

    storage_type = StorageType.SHARED_FS
    parameters = ("host_path", "storage_path")
    required_parameters = ("host_path",)
    uploads_through_server = True

    @classmethod
    def parameter_errors(cls, values: dict[str, str]) -> dict[str, str]:
        """The common rules; an absolute host_path and a storage_path that stays inside it."""
        errors = super().parameter_errors(values)
        host_path = values.get("host_path")
        if host_path and "host_path" not in errors:
            if not host_path.startswith("/"):
                errors["host_path"] = "must be an absolute path."
            elif ".." in host_path.split("/"):
                errors["host_path"] = "must not contain '..'."
        storage_path = values.get("storage_path")
        if storage_path and "storage_path" not in errors:
            try:
                check_relative_path(storage_path.rstrip("/"))
            except UnsafePath as exc:
                errors["storage_path"] = f"escapes host_path: {exc}."
        return errors

    @property
    def root(self) -> Path:
        """The directory holding the ``<uuid>/`` checkpoint directories."""
        root = Path(self.config.host_path)
        storage_path = self.config.storage_path.strip("/")
        if storage_path:
            root = root / check_relative_path(storage_path)
        return root

    def checkpoint_dir(self, checkpoint_uuid) -> Path:
        """``<root>/<uuid>`` for a checked uuid, refused when the directory is a symlink.

        Wherever it points: inside the root it would be another checkpoint's directory (a
        user could read, or partly delete, files that another user's checkpoint holds),
        outside it anything on the host.
        """
        base = self.root / check_uuid(checkpoint_uuid)
        if os.path.islink(base):
            raise UnsafePath(
                f"checkpoint directory {base.name} is a symlink; ckptweb reads and deletes "
                "only real directories"
            )
        return base

    def file_path(self, checkpoint_uuid, path: str) -> Path:
        """The absolute path of one file, refusing anything that resolves outside its dir."""
        base = self.checkpoint_dir(checkpoint_uuid)
        full = base / check_relative_path(path)
        if not _is_within(os.path.realpath(full), os.path.realpath(base)):
            raise UnsafePath("path resolves outside the checkpoint directory")
        return full

    def list_files(self, checkpoint_uuid: str) -> list[StoredFile]:
        """Regular files under the checkpoint dir (symlinks only if they stay inside).

        The walk of ``list_directory``: a symlink's target is resolved, a plain file's is
        not (resolving every path cost ~70 µs a file: 100,000 files took 7-13 s).
        """
        listed = self.list_directory(checkpoint_uuid)
        if listed.unsafe:
            logger.warning(
                "Skipping %s symlink(s) leaving checkpoint %s", listed.unsafe, listed.name
            )
        return listed.files

    def list_directory(self, checkpoint_uuid: str) -> ListedDirectory:
        """The checkpoint dir's regular files; symlinks leading out of it are counted."""
        base = self.checkpoint_dir(checkpoint_uuid)
        return _walk_directory(str(base), base.name) or ListedDirectory(base.name)

    @staticmethod
    def _stored_file(full: str, relative: str) -> StoredFile | None:
        """A StoredFile for a regular file, None for anything else (sockets, dangling)."""
        try:
            stat = os.stat(full)
        except OSError:
            return None
        if not os.path.isfile(full):
            return None
        return _stored(relative.replace(os.sep, "/"), stat)

    def stat(self, checkpoint_uuid: str, path: str) -> StoredFile:
        """The StoredFile of one regular file."""
        full = self.file_path(checkpoint_uuid, path)
        stored = self._stored_file(str(full), check_relative_path(path))
        if stored is None:
            raise FileNotFoundInStorage(f"{check_relative_path(path)} not found")
        return stored

    def open(self, checkpoint_uuid: str, path: str, start: int = 0, end: int | None = None):
        """The real file object for a whole file (so sendfile can be used), else a range."""
        full = self.file_path(checkpoint_uuid, path)
        try:
            handle = open(full, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileNotFoundInStorage(f"{check_relative_path(path)} not found") from None
        except OSError as exc:
            raise StorageError(f"cannot open {check_relative_path(path)}: {exc.strerror}") from None
        size = os.fstat(handle.fileno()).st_size
        if start == 0 and end is None:
            return handle
        start, end = clamp_range(start, end, size)
        handle.seek(start)
        return StreamReader(handle.read, end - start, close=handle.close, name=path)

    def write_range(self, checkpoint_uuid: str, path: str, offset: int, chunks: Iterable[bytes]):
        """Write a file of an upload from ``offset`` on, creating its directories.

        Never through a symlink: the checkpoint directory is refused if it is one
        (``checkpoint_dir``), each directory on the way is created or checked without
        following links, and the file is opened with ``O_NOFOLLOW``. Chunks are written
        as they come, so memory holds one chunk, never the file.
        """
        relative = check_relative_path(path)
        base = self.checkpoint_dir(checkpoint_uuid)
        base.parent.mkdir(parents=True, exist_ok=True)
        current = base
        for segment in [base.name, *relative.split("/")[:-1]]:
            current = current if segment == base.name else current / segment
            with contextlib.suppress(FileExistsError):
                os.mkdir(current)
            if os.path.islink(current) or not os.path.isdir(current):
                raise UnsafePath(f"{relative}: a directory on its way is a symlink or a file")
        try:
            fd = os.open(base / relative, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise UnsafePath(f"{relative}: cannot be written ({exc.strerror})") from None
        with os.fdopen(fd, "wb") as handle:
            os.ftruncate(fd, offset)
            handle.seek(offset)
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            return os.fstat(fd).st_size

    def delete_checkpoints(self, checkpoint_uuids: Iterable[str]) -> DeleteResult:
        """Remove each checkpoint dir file by file, recording every file that stays."""
        result = DeleteResult()
        for checkpoint_uuid in checkpoint_uuids:
            result.requests += 1
            try:
                self._delete_one(check_uuid(checkpoint_uuid), result)
            except (UnsafePath, OSError) as exc:
                result.errors[str(checkpoint_uuid)] = str(exc)
        return result

    def _delete_one(self, checkpoint_uuid: str, result: DeleteResult) -> None:
        """Delete one checkpoint dir bottom-up, never following symlinks."""
        base = self.root / check_uuid(checkpoint_uuid)
        if os.path.islink(base):  # the link goes, never what it points to
            self.remove_file(str(base))
            result.deleted_files += 1
            return
        if not os.path.lexists(base):
            return
        errors: dict[str, str] = {}
        total = 0
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            for name in filenames + links:
                total += 1
                full = os.path.join(dirpath, name)
                try:
                    self.remove_file(full)
                    result.deleted_files += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    key = f"{checkpoint_uuid}/{os.path.relpath(full, base)}"
                    errors[key] = exc.strerror or str(exc)
            if not errors:
                self._remove_dir(dirpath, checkpoint_uuid, errors)
        if errors:
            result.object_errors.update(errors)
            result.errors[checkpoint_uuid] = summarize_object_errors(errors, total)

    def delete_files(self, checkpoint_uuid: str, paths: Iterable[str]) -> DeleteResult:
        """Unlink each file (never following a symlink), then prune emptied directories."""
        result = DeleteResult(requests=1)
        name = str(checkpoint_uuid)
        paths = list(paths)
        try:
            base = self.checkpoint_dir(name)
            targets = [(path, self.file_path(name, path)) for path in paths]
        except UnsafePath as exc:
            result.errors[name] = str(exc)
            return result
        parents: set[Path] = set()
        for path, full in targets:
            try:
                self.remove_file(str(full))
                result.deleted_files += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                result.object_errors[path] = exc.strerror or str(exc)
            parents.update(p for p in full.parents if p != base and base in p.parents)
        # Deepest first, so a directory emptied by its emptied children goes too.
        for directory in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty (other files remain), or gone
                directory.rmdir()
        if result.object_errors:
            result.errors[name] = summarize_object_errors(result.object_errors, len(paths))
        return result

    @staticmethod
    def remove_file(full: str) -> None:
        """Unlink one file or symlink (a seam tests use to simulate a failing file)."""
        os.unlink(full)

    @staticmethod
    def _remove_dir(dirpath: str, checkpoint_uuid: str, errors: dict[str, str]) -> None:
        """Remove an emptied directory; report it if it will not go."""
        try:
            os.rmdir(dirpath)
        except FileNotFoundError:
            pass
        except OSError as exc:
            errors[f"{checkpoint_uuid}/{os.path.basename(dirpath)}/"] = exc.strerror or str(exc)

    def check_connection(self) -> None:
        """The root must be an existing directory this process can read and write."""
        root = self.root
        if not root.is_dir():
            raise StorageError(f"{root} does not exist or is not a directory")
        if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageError(f"{root} is not readable and writable by the server")

    def iter_directories(self) -> Iterator[ListedDirectory]:
        """Each directory under the root (symlinks excluded), walked one at a time, by name.

        Only the top-level names are sorted in memory; each directory is then walked on
        its own.
        """
        root = self.root
        try:
            with os.scandir(root) as entries:
                names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot list {root}: {exc.strerror}") from None
        for name in names:
            listed = _walk_directory(os.path.join(root, name), name)
            if listed is not None:
                yield listed

    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """Names of the directories directly under the root (symlinks excluded)."""
        try:
            with os.scandir(self.root) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        yield entry.name
        except OSError as exc:
            raise StorageError(f"cannot list {self.root}: {exc.strerror}") from None


def _stored(relative: str, stat: os.stat_result) -> StoredFile:
    """The StoredFile of a regular file at ``relative`` (a "/" path) with this stat."""
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    return StoredFile(path=relative, size=stat.st_size, modified=stat.st_mtime, etag=etag)


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
                    listed.files.append(_stored(relative, stat))
        except FileNotFoundError:
            if dirpath == base:
                return None
        except OSError as exc:
            raise StorageError(f"cannot list {dirpath}: {exc.strerror}") from None
    listed.files.sort(key=lambda stored: stored.path)
    return listed
