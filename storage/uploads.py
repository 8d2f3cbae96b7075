"""Uploads: files sent into a storage's ``<uuid>/`` directory before a checkpoint exists.

``docs/architecture.md`` "Uploads". This module moves and checks bytes; the checkpoint is
the experiments app's (``experiments/api/uploads.py`` checks who may, and ``complete``
reports the checkpoint through ``experiments.services.report_checkpoint``).

A session (``UploadSession``) declares every file and its size up front. On shared_fs the
bytes come through the server: ``write`` streams one request body to disk chunk by chunk,
from the byte a ``Content-Range`` names (a resumed upload sends the rest), never past the
declared size. ``check_complete`` lists the directory on storage and names every missing,
short or extra file; ``abort`` removes the directory. A session left OPEN past its
``expires_at`` (``settings.CKPTWEB_UPLOAD_SESSION_SECONDS``, 24 h) is aborted by the periodic sweep
(``abort_expired``), and a storage scan never calls the directory of an OPEN session an
orphan (``live_uuids``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ckptweb.lib.errors import Conflict
from ckptweb.lib.limits import InvalidInput, printable
from storage.backends import get_backend
from storage.backends.base import (
    CHUNK_SIZE,
    UPLOAD_PART_MARK,
    DirectDownloadUnsupported,
    StorageBackend,
    StorageError,
    UploadUnsupported,
)
from storage.direct import MAX_EXPIRES
from storage.models import StorageConfig, UploadSession, UploadState

logger = logging.getLogger(__name__)

#: S3 allows 10,000 parts per file (``settings.CKPTWEB_UPLOAD_PART_BYTES`` is their size).
MAX_PARTS = 10_000

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def session_seconds() -> int:
    """The lifetime of a new session."""
    return settings.CKPTWEB_UPLOAD_SESSION_SECONDS


@dataclass(frozen=True)
class Part:
    """One request a client sends for a file: its number, URL and byte count."""

    number: int
    url: str
    size: int


def backend_of(session: UploadSession) -> StorageBackend:
    return get_backend(session.storage)


def open_session(
    storage: StorageConfig, uuid: str, files: dict[str, int], trial_id: int, report: dict
) -> UploadSession:
    """A new OPEN session for directory ``uuid`` of ``storage``.

    ``files`` were checked by the caller (the report's path and size rules). Refused (409)
    when the storage takes no uploads, another session has that uuid or the directory
    already holds files (an abort removes the whole directory, so it must start empty).
    On an object store, each file over ``part_bytes()`` gets its multipart upload here.
    """
    reserved = [path for path in files if UPLOAD_PART_MARK in path]
    if reserved:
        raise InvalidInput(
            "files",
            f"{printable(reserved[0])!r}: names containing {UPLOAD_PART_MARK!r} are reserved.",
        )
    backend = get_backend(storage)
    if not backend.uploads_through_server:
        if not storage.direct_urls:
            raise Conflict(
                f"storage {storage.name} hands out no URLs of its own, so it takes no "
                "uploads; write the files to it and report the checkpoint.",
                code="upload_unsupported",
            )
        try:
            backend.signed_put_url(str(uuid), next(iter(files)), 60)  # local: fails fast
        except (UploadUnsupported, DirectDownloadUnsupported) as exc:
            raise Conflict(str(exc), code="upload_unsupported") from None
    if UploadSession.objects.filter(uuid=uuid).exists():
        raise Conflict(f"an upload of uuid {uuid} already exists.", code="duplicate_upload")
    if backend.list_files(str(uuid)):
        raise Conflict(f"storage {storage.name} already holds files under {uuid}.")
    expires_at = timezone.now() + timedelta(seconds=session_seconds())
    session = UploadSession.objects.create(
        uuid=uuid,
        storage=storage,
        trial_id=trial_id,
        report=report,
        files=files,
        expires_at=expires_at.replace(microsecond=0),
    )
    if backend.uploads_through_server:
        return session
    try:
        for path, size in files.items():
            if size > part_bytes() or backend.uploads_in_blocks:
                session.multipart[path] = backend.start_multipart(str(uuid), path)
    finally:
        UploadSession.objects.filter(pk=session.pk).update(multipart=session.multipart)
    return session


def part_bytes() -> int:
    """Files over this many bytes go in parts of (at least) this size (64 MiB)."""
    return settings.CKPTWEB_UPLOAD_PART_BYTES


def part_sizes(size: int) -> list[int]:
    """The sizes of a multipart file's parts: ``part_bytes()`` each (more for a file that
    would need over ``MAX_PARTS``), the last one the rest; none for an empty file."""
    step = max(part_bytes(), -(-size // MAX_PARTS))
    return [min(step, size - start) for start in range(0, size, step)]


def parts(
    session: UploadSession, server_url: Callable[[str], str], resumed: bool = False
) -> list[dict]:
    """``[{path, size, parts: [{number, url, size}]}]``: where each file's bytes go.

    shared_fs: one part per file, a PUT to ``server_url(path)`` on ckptweb. Object stores:
    a presigned PUT URL per file, or per part of a multipart file (signed locally, valid
    until the session expires, at most 7 days). ``resumed``: each part of a multipart file
    already on storage whole says ``present: true`` (and its ``etag``), so a resumed upload
    sends only the others (one listing per multipart file).
    """
    backend = backend_of(session)
    name = str(session.uuid)
    if backend.uploads_through_server:
        return [
            {"path": path, "size": size, "parts": [Part(1, server_url(path), size).__dict__]}
            for path, size in session.files.items()
        ]
    remaining = int((session.expires_at - timezone.now()).total_seconds())
    expires_in = max(1, min(remaining, MAX_EXPIRES))
    answer = []
    for path, size in session.files.items():
        upload_id = session.multipart.get(path)
        if upload_id is None:
            urls = [Part(1, backend.signed_put_url(name, path, expires_in), size)]
        else:
            urls = [
                Part(number, backend.signed_put_url(name, path, expires_in, upload_id, number), n)
                for number, n in enumerate(part_sizes(size), start=1)
            ]
        listed = [part.__dict__ for part in urls]
        if resumed and upload_id is not None:
            uploaded = backend.uploaded_parts(name, path, upload_id)
            for part in listed:
                size_and_etag = uploaded.get(part["number"])
                if size_and_etag is not None and size_and_etag[0] == part["size"]:
                    part.update(present=True, etag=size_and_etag[1])
        answer.append({"path": path, "size": size, "parts": listed})
    return answer


def ensure_open(session: UploadSession) -> None:
    """Conflict (409) unless the session is OPEN and not expired."""
    if session.state != UploadState.OPEN:
        raise Conflict(f"upload {session.pk} is {session.state.lower()}.", code="upload_ended")
    if session.expires_at <= timezone.now():
        raise Conflict(f"upload {session.pk} expired at {session.expires_at:%Y-%m-%d %H:%M}Z.")


def content_range(header: str | None, length: int | None, size: int) -> tuple[int, int]:
    """``(offset, count)`` of a PUT's body: its ``Content-Range`` (``bytes a-b/total``),
    else the whole file from byte 0. ``total`` must be the declared size; nothing may go
    past it."""
    if length is None:
        raise InvalidInput("Content-Length", "Content-Length is required.")
    if not header:
        offset = 0
    else:
        match = _CONTENT_RANGE.match(header.strip())
        if match is None:
            raise InvalidInput("Content-Range", "Content-Range must be 'bytes FIRST-LAST/TOTAL'.")
        offset, last, total = (int(group) for group in match.groups())
        if total != size:
            raise InvalidInput(
                "Content-Range", f"Content-Range total {total} is not the declared size {size}."
            )
        if last < offset or last - offset + 1 != length:
            raise InvalidInput(
                "Content-Range", f"Content-Range {offset}-{last} is not {length} bytes long."
            )
    if offset + length > size:
        raise InvalidInput(
            "Content-Range",
            f"{offset + length} bytes would be past the declared size of {size} bytes.",
        )
    return offset, length


def present(session: UploadSession) -> dict[str, int]:
    """Bytes on storage per declared file (0 when absent): what a resumed upload skips."""
    on_storage = {
        stored.path: stored.size for stored in backend_of(session).list_files(str(session.uuid))
    }
    return {path: on_storage.get(path, 0) for path in session.files}


def write(
    session: UploadSession, path: str, offset: int, length: int, read: Callable[[int], bytes]
) -> int:
    """Stream ``length`` bytes from ``read`` into declared file ``path`` at ``offset``.

    ``offset`` may not leave a gap: it is at most the bytes already present. Returns the
    file's size afterwards. A body that ends early keeps what arrived (a resume sends the
    rest) and is refused.
    """
    ensure_open(session)
    if not backend_of(session).uploads_through_server:
        raise Conflict(
            f"upload {session.pk} goes to {session.storage.type} storage itself: PUT the "
            "files to the URLs its parts name.",
            code="upload_elsewhere",
        )
    if path not in session.files:
        raise InvalidInput("path", f"{printable(path)!r} is not a file of upload {session.pk}.")
    backend = backend_of(session)
    try:
        have = backend.stat(str(session.uuid), path).size
    except StorageError:
        have = 0
    if offset > have:
        raise InvalidInput(
            "Content-Range",
            f"{printable(path)!r} has {have} bytes; a range must start at or before them.",
        )
    received = 0

    def chunks() -> Iterator[bytes]:
        nonlocal received
        while received < length:
            chunk = read(min(CHUNK_SIZE, length - received))
            if not chunk:
                return
            received += len(chunk)
            yield chunk

    size = backend.write_range(str(session.uuid), path, offset, chunks())
    if received < length:
        raise InvalidInput("Content-Length", f"the body ended after {received} of {length} bytes.")
    return size


def assemble(session: UploadSession, etags: dict | None) -> None:
    """Complete each multipart file from its parts' ETags (``{path: [{number, etag}]}``);
    refused naming ``parts`` and the file when its ETags are missing or do not assemble."""
    backend = backend_of(session)
    etags = etags or {}
    for path, upload_id in list(session.multipart.items()):
        sent = etags.get(path)
        if not backend.multipart_needs_etags:  # the parts follow from their numbers
            sent = [
                {"number": n, "etag": ""}
                for n in range(1, len(part_sizes(session.files[path])) + 1)
            ]
        try:
            assembly = [(int(item["number"]), str(item["etag"])) for item in sent or []]
        except (TypeError, KeyError, ValueError):
            raise InvalidInput(
                "parts", f"parts[{printable(path)!r}] must be a list of {{number, etag}}."
            ) from None
        if len(assembly) != len(part_sizes(session.files[path])):
            raise InvalidInput(
                "parts",
                f"parts[{printable(path)!r}] needs the ETags of its "
                f"{len(part_sizes(session.files[path]))} parts.",
            )
        try:
            backend.complete_multipart(str(session.uuid), path, upload_id, assembly)
        except StorageError as exc:
            raise InvalidInput("parts", f"{printable(path)!r} did not assemble: {exc}") from None
        del session.multipart[path]
        UploadSession.objects.filter(pk=session.pk).update(multipart=session.multipart)


def check_complete(session: UploadSession, etags: dict | None = None) -> dict[str, int]:
    """The files as declared, once storage holds exactly them; else a 400 naming each
    missing, short (or long) and extra file. Multipart files are assembled first."""
    assemble(session, etags)
    on_storage = {
        stored.path: stored.size for stored in backend_of(session).list_files(str(session.uuid))
    }
    problems = []
    for path, size in session.files.items():
        if path not in on_storage:
            problems.append(f"{printable(path)!r} is missing")
        elif on_storage[path] != size:
            problems.append(f"{printable(path)!r} has {on_storage[path]} of {size} bytes")
    problems += [
        f"{printable(path)!r} was not declared" for path in on_storage if path not in session.files
    ]
    if problems:
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise InvalidInput("files", f"upload {session.pk} is not complete: {shown}{more}.")
    return dict(session.files)


def finish(session: UploadSession) -> None:
    """Mark the session COMPLETED (its directory now belongs to a checkpoint)."""
    UploadSession.objects.filter(pk=session.pk).update(state=UploadState.COMPLETED)
    session.state = UploadState.COMPLETED


def abort(session: UploadSession) -> None:
    """Remove what was uploaded and mark the session ABORTED (only an OPEN one).

    Claimed by compare-and-set first, so a session being completed keeps its files.
    """
    with transaction.atomic():
        claimed = UploadSession.objects.filter(pk=session.pk, state=UploadState.OPEN).update(
            state=UploadState.ABORTED
        )
    if not claimed:
        raise Conflict(f"upload {session.pk} has already ended.", code="upload_ended")
    session.state = UploadState.ABORTED
    backend = backend_of(session)
    for path, upload_id in session.multipart.items():
        backend.abort_multipart(str(session.uuid), path, upload_id)
    result = backend.delete_checkpoints([str(session.uuid)])
    if not result.ok:
        raise StorageError(next(iter(result.errors.values())))


def abort_expired(now: datetime | None = None) -> int:
    """Abort every OPEN session past its expiry (the sweep calls it); how many went."""
    now = now or timezone.now()
    aborted = 0
    expired = UploadSession.objects.filter(state=UploadState.OPEN, expires_at__lte=now)
    for session in expired.select_related("storage").order_by("pk"):
        try:
            abort(session)
            aborted += 1
        except (Conflict, StorageError) as exc:
            logger.warning("Could not abort expired upload %s: %s", session.pk, exc)
    return aborted


def live_uuids(storage_id: int) -> set[str]:
    """Directories of ``storage_id`` that OPEN sessions are filling (never orphans)."""
    rows = UploadSession.objects.filter(storage_id=storage_id, state=UploadState.OPEN)
    return {str(uuid) for uuid in rows.values_list("uuid", flat=True)}
