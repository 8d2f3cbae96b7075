"""Resumable checkpoint downloads of the Python client: the tar is extracted as it arrives.

``download_archive`` streams a checkpoint's tar and writes each member straight into a
staging directory ``<output>/.<uuid>.extracting/``, so every byte is written once, as with
``curl | tar x`` (saving the tar first and extracting it afterwards wrote everything twice).
The archive is untrusted: only regular files are extracted (directories are implied; links,
devices and sparse members are refused), every member path is checked by
``ckptweb.lib.paths.check_relative_path``, files are opened without following links, a member
whose size differs from the checkpoint's ``resources`` is refused before its bytes are
written, and at the end every resource must be there with its recorded size. Only then is the
staging directory renamed to ``<output>/<uuid>/``.

Resuming: the journal ``<output>/<uuid>.download.json`` keeps the archive's ETag and, as
each member starts, its path, size and where its data starts in the archive. An interrupted
transfer (retried up to ``retries`` times, or picked up by a later call) asks for
``Range: bytes=<that offset + the member's bytes already on disk>-`` guarded by If-Range, so
nothing written is fetched again; a 200 instead (the checkpoint changed) starts over. A
damaged archive or a failed check leaves nothing behind. Only ``requests`` is needed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import urllib3

from ckptweb.client.errors import ApiError, DownloadInterrupted, response_error
from ckptweb.lib.paths import UnsafePath, check_relative_path

#: Bytes read from the socket and written to disk at a time.
CHUNK_SIZE = 4 * 1024 * 1024
#: What a broken connection raises from ``response.raw.read``.
NETWORK_ERRORS = (
    urllib3.exceptions.HTTPError,
    requests.RequestException,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)

Progress = Callable[[int, int | None], None]


def download_archive(
    client,
    checkpoint: dict,
    archive_path: str,
    output_dir: str | os.PathLike,
    progress: Progress | None,
    retries: int,
) -> Path:
    """Fetch the tar at ``archive_path`` of ``client`` (resumable) into ``<uuid>/``.

    ``client`` is a ``ckptweb.client.Client`` (its ``api_url`` and ``send``).
    """
    uuid = checkpoint["uuid"]
    output = Path(output_dir)
    target = output / uuid
    if target.exists() and any(target.iterdir()):
        raise ApiError(f"{target} already exists and is not empty; remove it first")
    output.mkdir(parents=True, exist_ok=True)
    resources = checkpoint.get("resources") or {}
    download = ArchiveDownload(client, uuid, archive_path, output, resources, progress)
    attempt = 0
    try:
        while True:
            try:
                download.fetch()
                break
            except DownloadInterrupted:
                attempt += 1
                if attempt > retries:
                    raise
                time.sleep(min(0.2 * 2**attempt, 5))
        download.finish(target)
    except (DownloadInterrupted, KeyboardInterrupt):
        raise  # the staging directory and the journal stay, to resume
    except BaseException:
        download.discard()
        raise
    return target


class ArchiveDownload:
    """One checkpoint's tar, streamed into ``staging`` with its journal beside it."""

    def __init__(self, client, uuid: str, archive_path: str, output: Path, resources, progress):
        self.client = client
        self.uuid = uuid
        self.archive_path = archive_path
        self.resources = resources
        self.progress = progress
        self.staging = output / f".{uuid}.extracting"
        self.journal_path = output / f"{uuid}.download.json"
        self.journal = self._load_journal()

    # --- the journal -----------------------------------------------------------------------

    def _load_journal(self) -> dict:
        """The journal of an earlier attempt, or a fresh start (empty staging directory)."""
        try:
            journal = json.loads(self.journal_path.read_text())
            member = journal.get("member")
            if self.staging.is_dir() and (member is None or _valid_member(member)):
                return journal
        except (OSError, ValueError, AttributeError):
            pass
        self.reset()
        return {"etag": None, "member": None}

    def _save_journal(self) -> None:
        partial = self.journal_path.with_name(self.journal_path.name + ".new")
        partial.write_text(json.dumps(self.journal))
        partial.replace(self.journal_path)

    def reset(self) -> None:
        """Forget what arrived: an empty staging directory, no journal."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        self.journal_path.unlink(missing_ok=True)
        self.journal = {"etag": None, "member": None}

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.journal_path.unlink(missing_ok=True)

    def resume_point(self) -> tuple[int, dict | None, int]:
        """(archive offset to ask from, the member to go on with, its bytes on disk)."""
        member = self.journal["member"]
        if member is None:
            return 0, None, 0
        try:
            on_disk = os.lstat(self.staging / member["path"]).st_size
        except FileNotFoundError:
            on_disk = 0
        written = min(on_disk, member["size"])
        return member["data"] + written, member, written

    # --- fetching --------------------------------------------------------------------------

    def fetch(self) -> None:
        """Bring the staging directory to the whole archive, resuming where it stopped."""
        offset, member, written = self.resume_point()
        headers = {"Accept": "application/x-tar"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.journal["etag"]:
                headers["If-Range"] = self.journal["etag"]
        client = self.client
        response = client.send(
            "GET", client.api_url(self.archive_path), headers=headers, stream=True
        )
        with response:
            if response.status_code == 416 and offset:
                self.reset()
                raise DownloadInterrupted("partial download no longer matches; starting over")
            if response.status_code >= 400:
                raise response_error(response)
            if response.status_code == 206:
                content_range = response.headers.get("Content-Range", "")
                if content_range_start(content_range) != offset:
                    self.reset()
                    raise DownloadInterrupted("server resumed at the wrong offset; starting over")
                total = content_range_total(content_range)
            else:
                if offset:
                    self.reset()  # the whole archive again (it changed, or no ranges)
                offset, member, written = 0, None, 0
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            self.journal["etag"] = response.headers.get("ETag")
            body = ResponseBody(response, offset, total, self.uuid, self.progress)
            self.extract(body, member, written)

    def extract(self, body: ResponseBody, member: dict | None, written: int) -> None:
        """Finish ``member`` (if resuming inside it), then every member that follows."""
        if member is not None:
            self.write_member(body, member, written)
            body.skip_to(member["data"] + _padded(member["size"]))
        try:
            tar = tarfile.open(fileobj=body, mode="r:")  # noqa: SIM115 - nothing to close
            for info in tar:  # reads headers only: write_member copies each member's data
                if info.isdir():
                    continue
                if not info.isfile() or info.issparse():
                    raise ApiError(f"archive entry {info.name!r} is not a regular file")
                relative = member_path(info.name, self.uuid)
                expected = self.resources.get(relative)
                if expected is not None and info.size != expected:
                    raise ApiError(
                        f"{relative} is {info.size} bytes, but the checkpoint records {expected}"
                    )
                member = {"path": relative, "data": info.offset_data, "size": info.size}
                self.journal["member"] = member
                self._save_journal()
                self.write_member(body, member, 0)
            body.finish()
        except tarfile.TarError as exc:
            raise ApiError(f"the downloaded archive is damaged: {exc}") from None

    def write_member(self, body: ResponseBody, member: dict, written: int) -> None:
        """Copy the member's data after its first ``written`` bytes into its file."""
        destination = self.staging / member["path"]
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (0 if written else os.O_TRUNC)
            fd = os.open(destination, flags, 0o644)
        except OSError as exc:
            raise ApiError(f"cannot write {destination}: {exc.strerror or exc}") from None
        try:
            if written:
                os.ftruncate(fd, written)
                os.lseek(fd, written, os.SEEK_SET)
            body.copy_to(fd, member["size"] - written, destination)
        finally:
            os.close(fd)

    def finish(self, target: Path) -> None:
        """Check every file's size, then move the staging directory to ``target``."""
        sizes = {
            path.relative_to(self.staging).as_posix(): path.stat().st_size
            for path in self.staging.rglob("*")
            if path.is_file()
        }
        check_sizes(sizes, self.resources)
        if target.exists():
            target.rmdir()  # empty (checked before downloading)
        self.staging.rename(target)
        self.journal_path.unlink(missing_ok=True)


class ResponseBody:
    """An archive's HTTP body as a forward-only file for ``tarfile``: ``tell()`` is the
    offset in the archive; a connection that breaks (or ends short) is DownloadInterrupted."""

    def __init__(self, response, offset: int, total: int | None, uuid: str, progress):
        self.raw = response.raw
        self.position = offset
        self.total = total
        self.uuid = uuid
        self.progress = progress

    def tell(self) -> int:
        return self.position

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or position < self.position:
            raise OSError("the download stream only seeks forward")
        self.skip_to(position)
        return self.position

    def skip_to(self, position: int) -> None:
        """Read and drop the bytes up to ``position`` (tar padding)."""
        while self.position < position:
            self.read(min(position - self.position, CHUNK_SIZE))

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the archive)."""
        if size is None or size < 0:
            size = (self.total - self.position) if self.total is not None else CHUNK_SIZE
        try:
            data = self.raw.read(size, decode_content=True)
        except NETWORK_ERRORS:
            raise self.interrupted() from None
        self.position += len(data)
        if len(data) < size and self.total is not None and self.position < self.total:
            raise self.interrupted()
        if self.progress and data:
            self.progress(self.position, self.total)
        return data

    def copy_to(self, fd: int, count: int, destination: Path) -> None:
        """Write the next ``count`` bytes to ``fd`` as they arrive (so a broken connection
        loses nothing received); DownloadInterrupted if they do not all come."""
        while count > 0:
            try:
                data = self.raw.read1(min(count, CHUNK_SIZE), decode_content=True)
            except NETWORK_ERRORS:
                raise self.interrupted() from None
            if not data:
                raise self.interrupted()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                raise ApiError(f"cannot write {destination}: {exc.strerror or exc}") from None
            self.position += len(data)
            count -= len(data)
            if self.progress:
                self.progress(self.position, self.total)

    def finish(self) -> None:
        """Read what follows the last member (the end blocks), so every byte has come."""
        if self.total is not None:
            self.skip_to(self.total)

    def interrupted(self) -> DownloadInterrupted:
        of = f" of {self.total}" if self.total is not None else ""
        return DownloadInterrupted(
            f"download of {self.uuid} interrupted after {self.position}{of} bytes; "
            "run again to resume"
        )


def _padded(size: int) -> int:
    """``size`` rounded up to whole tar blocks."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _valid_member(member) -> bool:
    """A journal's member entry: a safe path, whole-number offset and size."""
    try:
        return (
            check_relative_path(member["path"]) == member["path"]
            and isinstance(member["data"], int)
            and isinstance(member["size"], int)
            and member["data"] >= 0
            and member["size"] >= 0
        )
    except (KeyError, TypeError, UnsafePath):
        return False


def content_range_start(value: str) -> int | None:
    """``bytes 100-199/200`` → 100."""
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def content_range_total(value: str) -> int | None:
    """``bytes 100-199/200`` or ``bytes */200`` → 200."""
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def member_path(name: str, uuid: str) -> str:
    """A tar member's (or manifest entry's) path inside the checkpoint; ApiError if unsafe.

    Archives may name members ``./path`` or ``<uuid>/path``; what is left must pass
    ``ckptweb.lib.paths.check_relative_path``, the one path check.
    """
    path = name[2:] if name.startswith("./") else name
    if path.startswith(uuid + "/"):
        path = path[len(uuid) + 1 :]
    try:
        return check_relative_path(path)
    except UnsafePath as exc:
        raise ApiError(f"unsafe path in archive: {name!r} ({exc})") from None


def check_sizes(sizes: dict[str, int], resources: dict[str, int]) -> None:
    """Every resource is present with its recorded size; raise ApiError otherwise."""
    for path, expected in sorted(resources.items()):
        if path not in sizes:
            raise ApiError(f"{path} is missing from the downloaded checkpoint")
        if sizes[path] != expected:
            raise ApiError(f"{path} is {sizes[path]} bytes, but the checkpoint records {expected}")
