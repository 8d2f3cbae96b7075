"""Streamed tar, tgz and zip archives of a checkpoint, with bounded memory.

A plain tar's layout is a pure function of the file list (paths, sizes, mtimes), so its
exact length is known before a byte is read and any byte range can be produced by
reading only the files that overlap it: that is what makes resumable downloads possible.
tgz and zip are streamed front to back.
"""

from __future__ import annotations

import hashlib
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from storage.backends.base import CHUNK_SIZE, StorageError, StoredFile

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 20 blocks: tar archives are padded to a whole record
#: gzip level for tgz: checkpoints are mostly incompressible weights, so favour speed.
GZIP_LEVEL = 1
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry

#: ``opener(path, start, end)`` returns a reader of bytes ``[start, end)`` of one file.
Opener = Callable[[str, int, int], object]


@dataclass(frozen=True)
class ArchiveFormat:
    """One downloadable archive format."""

    name: str
    media_type: str
    extension: str


FORMATS = {
    "tar": ArchiveFormat("tar", "application/x-tar", ".tar"),
    "tgz": ArchiveFormat("tgz", "application/gzip", ".tgz"),
    "zip": ArchiveFormat("zip", "application/zip", ".zip"),
}


def read_exactly(opener: Opener, path: str, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of one file in CHUNK_SIZE pieces; StorageError if it is short."""
    if end <= start:
        return
    reader = opener(path, start, end)
    try:
        remaining = end - start
        while remaining > 0:
            chunk = reader.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise StorageError(f"{path} is shorter than when it was listed")
            remaining -= len(chunk)
            yield chunk
    finally:
        reader.close()


def coalesce(chunks: Iterable[bytes], size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Join small chunks (tar headers) into pieces of about ``size`` bytes."""
    pending: list[bytes] = []
    pending_size = 0
    for chunk in chunks:
        if not pending and len(chunk) >= size:
            yield chunk
            continue
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= size:
            yield b"".join(pending)
            pending, pending_size = [], 0
    if pending:
        yield b"".join(pending)


# Plain tar ------------------------------------------------------------------------------


def tar_header(stored: StoredFile) -> bytes:
    """The deterministic header block(s) of one regular-file entry (PAX when needed)."""
    info = tarfile.TarInfo(stored.path)
    info.size = stored.size
    info.mtime = int(stored.modified or 0)
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@dataclass(frozen=True)
class Segment:
    """A run of archive bytes: literal ``data``, or bytes of the file at ``path``."""

    offset: int
    length: int
    data: bytes = b""
    path: str = ""

    @property
    def end(self) -> int:
        return self.offset + self.length


class TarPlan:
    """The byte layout of a plain tar of ``files``: exact size, ETag, any byte range."""

    def __init__(self, files: Iterable[StoredFile]):
        self.files = list(files)
        self.segments: list[Segment] = []
        offset = 0
        for stored in self.files:
            offset = self._add(offset, data=tar_header(stored))
            offset = self._add(offset, length=stored.size, path=stored.path)
            offset = self._add(offset, data=b"\0" * (-stored.size % BLOCK))
        trailer = 2 * BLOCK
        trailer += -(offset + trailer) % RECORD
        self.size = self._add(offset, data=b"\0" * trailer)

    def _add(self, offset: int, data: bytes = b"", length: int = 0, path: str = "") -> int:
        length = len(data) if data else length
        if length:
            self.segments.append(Segment(offset, length, data, path))
        return offset + length

    @property
    def etag(self) -> str:
        """A strong ETag: the same files (paths, sizes, versions) give the same bytes."""
        digest = hashlib.sha256()
        for stored in self.files:
            line = f"{stored.path}\0{stored.size}\0{stored.etag}\0{int(stored.modified or 0)}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
        return f'"tar-{digest.hexdigest()[:32]}"'

    def iter_bytes(self, opener: Opener, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the archive, reading only the files that overlap."""
        end = self.size if end is None else min(end, self.size)
        return coalesce(self._iter_range(opener, start, end))

    def _iter_range(self, opener: Opener, start: int, end: int) -> Iterator[bytes]:
        for segment in self.segments:
            if segment.end <= start:
                continue
            if segment.offset >= end:
                break
            local_start = max(start, segment.offset) - segment.offset
            local_end = min(end, segment.end) - segment.offset
            if segment.path:
                yield from read_exactly(opener, segment.path, local_start, local_end)
            else:
                yield segment.data[local_start:local_end]


# tgz -------------------------------------------------------------------------------------


def iter_tgz(plan: TarPlan, opener: Opener) -> Iterator[bytes]:
    """The plan's tar, gzip-compressed on the fly."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in plan.iter_bytes(opener):
        compressed = compressor.compress(chunk)
        if compressed:
            yield compressed
    yield compressor.flush()


# zip -------------------------------------------------------------------------------------


class _ZipSink:
    """A write-only, non-seekable target for ZipFile that hands back what was written."""

    def __init__(self):
        self._chunks: list[bytes] = []
        self._position = 0

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing to flush: ``drain`` hands the bytes over."""

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _zip_info(stored: StoredFile) -> zipfile.ZipInfo:
    modified = max(stored.modified or ZIP_EPOCH, ZIP_EPOCH)
    info = zipfile.ZipInfo(stored.path, date_time=time.gmtime(modified)[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o100644 << 16
    info.file_size = stored.size
    return info


def iter_zip(files: Iterable[StoredFile], opener: Opener) -> Iterator[bytes]:
    """A stored (uncompressed) zip of ``files`` with data descriptors and zip64 as needed."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for stored in files:
            force_zip64 = stored.size >= zipfile.ZIP64_LIMIT
            with archive.open(_zip_info(stored), "w", force_zip64=force_zip64) as entry:
                for chunk in read_exactly(opener, stored.path, 0, stored.size):
                    entry.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def iter_archive(fmt: str, files: list[StoredFile], opener: Opener) -> Iterator[bytes]:
    """The whole archive of ``files`` in format ``fmt`` (``tar``, ``tgz`` or ``zip``)."""
    if fmt == "tar":
        return TarPlan(files).iter_bytes(opener)
    if fmt == "tgz":
        return iter_tgz(TarPlan(files), opener)
    if fmt == "zip":
        return (chunk for chunk in iter_zip(files, opener) if chunk)
    raise ValueError(f"unknown archive format {fmt!r}")
