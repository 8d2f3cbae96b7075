"""``ckpt checkpoint download UUID --direct``: files straight from the object store.

The server only signs: ``GET checkpoints/{uuid}/urls`` returns a presigned URL per file,
then the files are fetched from S3/GCS/Azure in parallel ranged GETs (``parallel``
connections, default 8; files larger than ``PART_SIZE`` are split into parts), so no
checkpoint byte passes through ckptweb.

Resumable: the files are written in place into ``<output>/.<uuid>.direct/`` and every
finished part is recorded in its ``.progress.json``; a later run with the same file list
skips the finished parts. Each part's length is checked against its Content-Range, each
file's size against the manifest and the checkpoint's ``resources``; only then is the
staging directory renamed to ``<output>/<uuid>/``, the archive download's layout.

shared_fs storage has no URLs (the server answers 409): the download then falls back to
the server's tar stream, saying so on stderr. Only ``requests`` is needed (no Django).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import requests

from ckptweb.client import ApiError, Client
from ckptweb.client.download import (
    CHUNK_SIZE,
    Progress,
    check_sizes,
    content_range_start,
    member_path,
)
from ckptweb.client.errors import backoff

DEFAULT_PARALLEL = 8
#: Files larger than this are fetched in parts of this size, in parallel.
PART_SIZE = 32 * 1024 * 1024
#: Lifetime asked for the URLs: long enough for a big checkpoint on a slow link.
URL_LIFETIME = 6 * 3600
PROGRESS_FILE = ".progress.json"


@dataclass(frozen=True)
class Part:
    """Bytes ``[start, end)`` of one file of the manifest."""

    path: str
    index: int
    start: int
    end: int


class DirectDownload:
    """One direct download of a checkpoint into ``output/<uuid>/``."""

    def __init__(
        self,
        client: Client,
        uuid: str,
        output_dir: str | os.PathLike = ".",
        parallel: int = DEFAULT_PARALLEL,
        progress: Progress | None = None,
        retries: int = 3,
        part_size: int = PART_SIZE,
    ):
        if parallel < 1:
            raise ApiError("--parallel must be at least 1")
        self.client = client
        self.uuid = uuid
        self.output = Path(output_dir)
        self.parallel = parallel
        self.progress = progress
        self.retries = retries
        self.part_size = part_size
        self._lock = threading.Lock()
        self._local = threading.local()
        self._done_bytes = 0

    def run_or_stream(self, stderr=None) -> Path:
        """``run``; on a storage without direct URLs (a 409, shared_fs), the server's
        stream instead, saying so on ``stderr``."""
        try:
            return self.run()
        except ApiError as exc:
            if exc.status != 409:
                raise
            print(f"ckpt: {exc} Falling back to the server's stream.", file=stderr or sys.stderr)
        return self.client.download_checkpoint(
            self.uuid, self.output, progress=self.progress, retries=self.retries
        )

    # --- the plan ------------------------------------------------------------------------

    def manifest(self) -> list[dict]:
        """The presigned URLs, paths checked to stay inside the checkpoint directory."""
        body = self.client.request(
            "GET", f"checkpoints/{self.uuid}/urls", params={"expires": URL_LIFETIME}
        )
        files = body.get("files") or []
        for entry in files:
            entry["path"] = member_path(entry["path"], self.uuid)
        return files

    def parts(self, files: list[dict]) -> list[Part]:
        """Every file split into ranges of at most ``part_size`` bytes (none when empty)."""
        parts = []
        for entry in files:
            size = int(entry["size"])
            for index, start in enumerate(range(0, size, self.part_size)):
                parts.append(Part(entry["path"], index, start, min(start + self.part_size, size)))
        return parts

    # --- running -------------------------------------------------------------------------

    def run(self) -> Path:
        """Download, verify, and move the files into place; returns ``output/<uuid>``."""
        checkpoint = self.client.get_checkpoint(self.uuid)
        self.uuid = checkpoint["uuid"]
        target = self.output / self.uuid
        if target.exists() and any(target.iterdir()):
            raise ApiError(f"{target} already exists and is not empty; remove it first")
        files = self.manifest()
        staging = self.output / f".{self.uuid}.direct"
        sizes = {entry["path"]: int(entry["size"]) for entry in files}
        done = self._prepare(staging, sizes)
        urls = {entry["path"]: entry["url"] for entry in files}
        finished = {(path, index) for path, index in done}
        todo = [part for part in self.parts(files) if (part.path, part.index) not in finished]
        total = sum(sizes.values())
        self._done_bytes = total - sum(part.end - part.start for part in todo)
        self._report(total)
        self._fetch_all(staging, urls, todo, total, sizes, done)
        actual = {path: (staging / path).stat().st_size for path in sizes}
        check_sizes(actual, sizes)
        check_sizes(actual, checkpoint.get("resources") or {})
        (staging / PROGRESS_FILE).unlink(missing_ok=True)
        if target.exists():
            target.rmdir()  # empty (checked above)
        staging.rename(target)
        return target

    def _fetch_all(self, staging, urls, todo: list[Part], total, sizes, done) -> None:
        """Fetch the parts in parallel, recording each as it finishes.

        After the first failure no new part starts, but the parts already running are
        still recorded when they finish, so the next run resumes with all of them.
        """
        first_error: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = [pool.submit(self._fetch_part, staging, urls, part, total) for part in todo]
            try:
                for future in as_completed(futures):
                    if future.cancelled():
                        continue
                    try:
                        part = future.result()
                    except Exception as exc:
                        if first_error is None:
                            first_error = exc
                            for pending in futures:
                                pending.cancel()
                        continue
                    with self._lock:
                        done.append([part.path, part.index])
                        self._save(staging, sizes, done)
            except BaseException:  # Ctrl-C: start nothing new
                for pending in futures:
                    pending.cancel()
                raise
        if first_error is not None:
            raise first_error

    def _prepare(self, staging: Path, sizes: dict[str, int]) -> list[list]:
        """The parts already done by an earlier run with the same files; files allocated."""
        state = staging / PROGRESS_FILE
        done: list[list] = []
        if state.exists():
            try:
                saved = json.loads(state.read_text())
                if saved.get("sizes") == sizes and saved.get("part_size") == self.part_size:
                    done = [list(item) for item in saved.get("done", [])]
            except (OSError, ValueError):
                done = []
            if not done:
                shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, exist_ok=True)
        for path, size in sizes.items():
            destination = staging / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(destination, "ab") as handle:  # create, keep what is there
                if handle.tell() != size:
                    handle.truncate(size)
        self._save(staging, sizes, done)
        return done

    def _save(self, staging: Path, sizes: dict[str, int], done: list[list]) -> None:
        state = staging / PROGRESS_FILE
        temporary = state.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({"sizes": sizes, "part_size": self.part_size, "done": done})
        )
        temporary.replace(state)

    def _session(self) -> requests.Session:
        """One HTTP session per worker thread (sessions are not shared across threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _report(self, total: int) -> None:
        if self.progress:
            self.progress(self._done_bytes, total)

    def _fetch_part(self, staging: Path, urls: dict[str, str], part: Part, total: int) -> Part:
        """GET one range into place, retrying a failed or short transfer."""
        attempt = 0
        while True:
            try:
                self._get_range(staging / part.path, urls[part.path], part, total)
                return part
            except ApiError:
                raise
            except (requests.RequestException, OSError, _ShortRead) as exc:
                attempt += 1
                if attempt > self.retries:
                    raise ApiError(
                        f"direct download of {part.path} bytes {part.start}-{part.end - 1} "
                        f"failed: {exc}; run again to resume"
                    ) from None
                time.sleep(backoff(attempt))

    def _get_range(self, destination: Path, url: str, part: Part, total: int) -> None:
        headers = {"Range": f"bytes={part.start}-{part.end - 1}"}
        response = self._session().get(url, headers=headers, stream=True, timeout=(10, 60))
        with response:
            if response.status_code in (401, 403):
                raise ApiError(
                    f"the storage refused the URL of {part.path} (HTTP {response.status_code}); "
                    "it may have expired: run again to resume with new URLs"
                )
            if response.status_code >= 400:
                raise _ShortRead(f"HTTP {response.status_code} from the storage")
            if response.status_code == 206:
                start = content_range_start(response.headers.get("Content-Range", ""))
                if start != part.start:
                    raise _ShortRead(f"storage answered range start {start}, not {part.start}")
            elif part.start != 0:
                raise _ShortRead("the storage ignored the Range header")
            written = 0
            wanted = part.end - part.start
            fd = os.open(destination, os.O_WRONLY)
            try:
                for chunk in response.iter_content(CHUNK_SIZE):
                    chunk = chunk[: wanted - written]
                    if not chunk:
                        break
                    os.pwrite(fd, chunk, part.start + written)
                    written += len(chunk)
                    with self._lock:
                        self._done_bytes += len(chunk)
                        self._report(total)
            finally:
                os.close(fd)
            if written != wanted:
                with self._lock:
                    self._done_bytes -= written
                raise _ShortRead(f"got {written} of {wanted} bytes")


class _ShortRead(Exception):
    """A part's transfer ended early or answered the wrong range (retried)."""
