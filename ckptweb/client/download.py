"""Resumable checkpoint downloads of the Python client: fetch the tar, extract, check sizes.

``download_archive`` streams a checkpoint's tar into ``<uuid>.tar.part``; an interrupted
transfer resumes with a Range request guarded by If-Range (the ETag is kept beside the
``.part``), up to ``retries`` times, and a later call picks up a ``.part`` left behind. The
tar is then extracted into a staging directory (regular files only, every member path
checked by ``ckptweb.lib.paths.check_relative_path``), each file's size is checked against the
checkpoint's ``resources``, and only then is the staging directory renamed to
``<output>/<uuid>/``. Nothing is left behind on failure. Only ``requests`` is needed.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from ckptweb.client.errors import ApiError, DownloadInterrupted, response_error
from ckptweb.lib.paths import UnsafePath, check_relative_path

CHUNK_SIZE = 1024 * 1024

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
    part = output / f"{uuid}.tar.part"
    attempt = 0
    while True:
        try:
            fetch_archive(client, uuid, archive_path, part, progress)
            break
        except DownloadInterrupted:
            attempt += 1
            if attempt > retries:
                raise
            time.sleep(min(0.2 * 2**attempt, 5))
    try:
        extract_checkpoint(part, target, uuid, checkpoint.get("resources") or {})
    finally:
        part.unlink(missing_ok=True)
        _etag_path(part).unlink(missing_ok=True)
    return target


def fetch_archive(
    client, uuid: str, archive_path: str, part: Path, progress: Progress | None
) -> None:
    """Bring ``part`` to the complete archive, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    etag_file = _etag_path(part)
    headers = {"Accept": "application/x-tar"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if etag_file.exists():
            headers["If-Range"] = etag_file.read_text().strip()
    response = client.send("GET", client.api_url(archive_path), headers=headers, stream=True)
    with response:
        if response.status_code == 416 and offset:
            total = content_range_total(response.headers.get("Content-Range", ""))
            if total == offset:
                return  # the .part already holds everything
            part.unlink()
            raise DownloadInterrupted("partial download no longer matches; starting over")
        if response.status_code >= 400:
            raise response_error(response)
        if response.status_code == 206:
            start = content_range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink()
                raise DownloadInterrupted("server resumed at the wrong offset; starting over")
            total = content_range_total(response.headers.get("Content-Range", ""))
            mode = "ab"
        else:
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if response.headers.get("ETag"):
            etag_file.write_text(response.headers["ETag"])
        done = offset
        try:
            with open(part, mode) as out:
                for chunk in response.iter_content(CHUNK_SIZE):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except requests.RequestException:
            raise DownloadInterrupted(
                f"download of {uuid} interrupted after {done} bytes; run again to resume"
            ) from None
        except OSError as exc:
            raise ApiError(f"cannot write {part}: {exc.strerror or exc}") from None
        if total is not None and done != total:
            raise DownloadInterrupted(
                f"download of {uuid} interrupted after {done} of {total} bytes; run again to resume"
            )


def _etag_path(part: Path) -> Path:
    return part.with_name(part.name + ".etag")


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


def extract_checkpoint(archive: Path, target: Path, uuid: str, resources: dict) -> None:
    """Extract a checkpoint tar into ``target`` (regular files only, paths kept inside),
    then check each file's size against ``resources``. Leaves nothing behind on failure."""
    staging = target.with_name(f".{target.name}.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        sizes = {}
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ApiError(f"archive entry {member.name!r} is not a regular file")
                relative = member_path(member.name, uuid)
                destination = staging / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK_SIZE)
                sizes[relative] = destination.stat().st_size
        check_sizes(sizes, resources)
        if target.exists():
            target.rmdir()  # empty (checked before downloading)
        staging.rename(target)
    except tarfile.TarError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ApiError(f"the downloaded archive is damaged: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_sizes(sizes: dict[str, int], resources: dict[str, int]) -> None:
    """Every resource is present with its recorded size; raise ApiError otherwise."""
    for path, expected in sorted(resources.items()):
        if path not in sizes:
            raise ApiError(f"{path} is missing from the downloaded checkpoint")
        if sizes[path] != expected:
            raise ApiError(f"{path} is {sizes[path]} bytes, but the checkpoint records {expected}")
