"""Checkpoint uploads of the Python client: a directory in, a COMPLETED checkpoint out.

``UploadCalls.upload_checkpoint`` walks a directory, opens an upload session
(``POST trials/{id}/uploads``), PUTs every file (or part) in parallel, then completes it
(``POST uploads/{id}/complete``), which checks every file on storage. On shared_fs the URLs
are ckptweb's own and carry the client's token; presigned object-store URLs get a plain
request, never the token.

**Resumable.** The session's id is kept in a small state file under
``$CKPTWEB_CACHE_DIR`` (default ``~/.cache/ckptweb/uploads/``), named after the server,
trial, directory and steps. A re-run of the same upload finds it, asks the server what is
present (``GET uploads/{id}``) and sends only the rest: a file already whole is skipped, a
partial file on shared_fs is continued from its last byte (``Content-Range``), and the parts
of a multipart file already on the object store are not sent again. The state file
goes once the checkpoint exists. Only ``requests`` is needed.

**Retried.** A PUT that fails on the way (connection reset, timeout) or that the server or
storage answers busy (408, 429, 5xx) is sent again, up to ``PUT_ATTEMPTS`` times with
backoff; the same body, from the same byte, is always a valid request (a shared_fs file
never has fewer bytes than a range starts at). A refusal (other 4xx) fails at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from ckptweb.client.errors import (
    TRANSIENT_STATUSES,
    ApiError,
    backoff,
    network_reason,
    response_error,
)
from ckptweb.lib.paths import UnsafePath, check_relative_path

#: Parallel PUTs of an upload.
DEFAULT_PARALLEL = 4
#: Tries of one PUT before the upload fails (a re-run then resumes it).
PUT_ATTEMPTS = 5


def local_files(directory: Path) -> dict[str, int]:
    """``{relative POSIX path: size}`` of the regular files under ``directory`` (symlinked
    directories are not entered), sorted by path."""
    if not directory.is_dir():
        raise ApiError(f"{directory} is not a directory")
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            full = Path(root) / name
            if not full.is_file():
                continue
            relative = full.relative_to(directory).as_posix()
            try:
                check_relative_path(relative)
            except UnsafePath as exc:
                raise ApiError(f"{relative!r} cannot be uploaded: {exc}") from None
            files[relative] = full.stat().st_size
    if not files:
        raise ApiError(f"{directory} holds no files to upload")
    return dict(sorted(files.items()))


class FileSlice:
    """``length`` bytes of a file from ``offset``, read in blocks (what requests streams)."""

    def __init__(self, path: Path, offset: int, length: int, sent):
        self.handle = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.handle.seek(offset)
        self.remaining = length
        self.sent = sent

    def __len__(self) -> int:
        return self.remaining

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.handle.read(size) if size else b""
        self.remaining -= len(data)
        self.sent(len(data))
        return data

    def close(self) -> None:
        self.handle.close()


@dataclass
class PartJob:
    path: str
    number: int
    url: str
    offset: int  # where the bytes to send start in the local file
    length: int
    content_range: str | None = None


class UploadCalls:
    """``upload_checkpoint`` for ``ckptweb.client.Client`` (uses its ``request``, ``send``,
    ``url`` and ``get_checkpoint``)."""

    def upload_checkpoint(
        self,
        trial_id: int,
        directory: str | os.PathLike,
        steps_completed: int,
        metadata: dict | None = None,
        uuid: str | None = None,
        parallel: int = DEFAULT_PARALLEL,
        progress=None,
    ) -> dict:
        """Upload ``directory``'s files as a checkpoint of trial ``trial_id``; the checkpoint.

        Resumes an interrupted upload of the same directory (see the module's docstring).
        ``progress(done_bytes, total_bytes)`` is called as bytes go out.
        """
        directory = Path(directory)
        files = local_files(directory)
        state = _state_file(self.url, trial_id, directory, steps_completed)
        session = self._resumable_session(state, files)
        if session is None:
            body = {
                "steps_completed": steps_completed,
                "files": [{"path": path, "size": size} for path, size in files.items()],
            }
            if metadata is not None:
                body["metadata"] = metadata
            if uuid is not None:
                body["uuid"] = uuid
            created = self.request("POST", f"trials/{trial_id}/uploads", json=body)
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"id": created["id"]}))
            session = self.request("GET", f"uploads/{created['id']}")
        jobs, done, etags = _jobs(session)
        multipart = {item["path"] for item in session["files"] if len(item["parts"]) > 1}
        total = sum(files.values())
        sent = _send_all(self, directory, jobs, multipart, parallel, progress, done, total)
        for path, tags in sent.items():
            etags[path] = sorted(etags.get(path, []) + tags, key=lambda tag: tag["number"])
        checkpoint = self.request(
            "POST", f"uploads/{session['id']}/complete", json={"parts": etags} if etags else {}
        )
        state.unlink(missing_ok=True)
        return self.get_checkpoint(checkpoint["uuid"])

    def _resumable_session(self, state: Path, files: dict[str, int]) -> dict | None:
        """The OPEN session a previous run left for these files, else None."""
        try:
            upload_id = json.loads(state.read_text())["id"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            session = self.request("GET", f"uploads/{upload_id}")
        except ApiError:
            return None
        declared = {item["path"]: item["size"] for item in session.get("files", [])}
        if session.get("state") != "OPEN" or declared != files:
            return None
        return session


def _state_file(url: str, trial_id: int, directory: Path, steps: int) -> Path:
    root = os.environ.get("CKPTWEB_CACHE_DIR") or Path.home() / ".cache" / "ckptweb"
    key = json.dumps([url, trial_id, str(directory.resolve()), steps])
    return Path(root) / "uploads" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _jobs(session: dict) -> tuple[list[PartJob], int, dict[str, list[dict]]]:
    """The PUTs still needed, the bytes already present, and the ETags of the parts of
    multipart files already on storage (``{path: [{number, etag}]}``)."""
    jobs, done, etags = [], 0, {}
    for item in session["files"]:
        path, size, present = item["path"], item["size"], item.get("present", 0)
        parts = item["parts"]
        if present == size:
            done += size
            continue
        if len(parts) == 1 and 0 < present < size and _is_server_url(parts[0]["url"]):
            done += present
            length = size - present
            rng = f"bytes {present}-{size - 1}/{size}"
            jobs.append(PartJob(path, 1, parts[0]["url"], present, length, rng))
            continue
        offset = 0
        for part in parts:
            if part.get("present"):
                done += part["size"]
                if len(parts) > 1:
                    etags.setdefault(path, []).append(
                        {"number": part["number"], "etag": part.get("etag", "")}
                    )
            else:
                jobs.append(PartJob(path, part["number"], part["url"], offset, part["size"]))
            offset += part["size"]
    return jobs, done, etags


def _is_server_url(url: str) -> bool:
    return "/api/v1/uploads/" in url


def _send_all(client, directory, jobs, multipart, parallel, progress, done, total) -> dict:
    """PUT every job, ``parallel`` at a time; the multipart ETags ``{path: [{number, etag}]}``."""
    lock = threading.Lock()
    sent = [done]
    local = threading.local()

    def count(n: int) -> None:
        with lock:
            sent[0] += n
            if progress is not None:
                progress(sent[0], total)

    def attempt(job: PartJob) -> requests.Response:
        """One PUT of ``job`` (any status); the bytes it sent are taken back from the
        progress when it fails, so a retry does not count them twice."""
        body = FileSlice(directory / job.path, job.offset, job.length, count)
        headers = {"Content-Length": str(job.length), "Content-Type": "application/octet-stream"}
        if job.content_range:
            headers["Content-Range"] = job.content_range
        response = None
        try:
            if _is_server_url(job.url):  # ckptweb itself: the client's token
                response = client.send("PUT", job.url, data=body, headers=headers)
            else:  # a presigned URL: no token, a plain session per thread
                plain = getattr(local, "session", None) or requests.Session()
                local.session = plain
                response = plain.put(job.url, data=body, headers=headers, timeout=(10, 300))
            return response
        finally:
            body.close()
            if response is None or response.status_code >= 400:
                count(-(job.length - body.remaining))

    def refused(job: PartJob, response: requests.Response) -> ApiError:
        if _is_server_url(job.url):
            return response_error(response)
        return ApiError(f"uploading {job.path} failed: HTTP {response.status_code}")

    def put(job: PartJob) -> tuple[PartJob, str | None]:
        tries = 0
        while True:
            tries += 1
            response, retry_after = None, None
            try:
                response = attempt(job)
            except requests.RequestException as exc:  # presigned URL: the network failed
                reason = network_reason(exc)
            except ApiError as exc:  # ckptweb's URL: ``send`` says the network failed
                reason = exc.message
            else:
                if response.status_code < 400:
                    return job, response.headers.get("ETag")
                if response.status_code not in TRANSIENT_STATUSES:
                    raise refused(job, response)
                reason = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
            if tries == PUT_ATTEMPTS:
                if response is not None:
                    raise refused(job, response)
                raise ApiError(f"uploading {job.path} failed ({reason}); run again to resume")
            time.sleep(backoff(tries, retry_after))

    etags: dict[str, list[dict]] = {}
    if progress is not None:
        progress(done, total)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for job, etag in pool.map(put, jobs):
            if job.path in multipart:
                etags.setdefault(job.path, []).append({"number": job.number, "etag": etag})
    return etags
