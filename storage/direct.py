"""Direct downloads: presigned GET URLs that let clients fetch files from the store itself.

Bytes of a direct download never pass through ckptweb. ``signed_manifest`` lists the
directory's files once (one listing request) and signs a URL per file locally, so a
checkpoint of 10,000 files costs the same one request as its file list. URLs are valid
``expires_in`` seconds: ``DEFAULT_EXPIRES`` (1 h) unless asked, at most ``MAX_EXPIRES``
(7 days, the longest an S3 SigV4 or GCS V4 signature may live).

Object stores only: shared_fs raises DirectDownloadUnsupported (the API answers 409).
A presigned URL is a bearer credential for one file until it expires; it never contains
a storage secret (an S3 URL names the access key *ID*, as SigV4 requires, never the key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.backends.base import DirectDownloadUnsupported, FileNotFoundInStorage, StorageBackend

DEFAULT_EXPIRES = 3600
MAX_EXPIRES = 7 * 24 * 3600


@dataclass(frozen=True)
class DirectFile:
    """One file of a direct-download manifest."""

    path: str
    size: int
    url: str
    expires_at: datetime


def ensure_direct_urls(backend: StorageBackend) -> None:
    """DirectDownloadUnsupported (a 409) when the storage's admin turned direct URLs off."""
    if not backend.config.direct_urls:
        raise DirectDownloadUnsupported(
            f"storage {backend.config.name} does not hand out direct URLs; download the "
            "files through ckptweb."
        )


def _expiry(expires_in: int) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=expires_in)).replace(microsecond=0)


def signed_manifest(
    backend: StorageBackend, name: str, expires_in: int = DEFAULT_EXPIRES
) -> list[DirectFile]:
    """A presigned URL for every file of directory ``name``, sorted by path.

    Raises DirectDownloadUnsupported (shared_fs, or credentials that cannot sign),
    FileNotFoundInStorage (no files) or another StorageError.
    """
    ensure_direct_urls(backend)
    # Signing is local: a first signature fails fast (409) before any listing request.
    backend.signed_url(name, "metadata.json", expires_in)
    files = backend.list_files(name)
    if not files:
        raise FileNotFoundInStorage(f"checkpoint {name} has no files in storage")
    expires_at = _expiry(expires_in)
    return [
        DirectFile(
            stored.path, stored.size, backend.signed_url(name, stored.path, expires_in), expires_at
        )
        for stored in files
    ]


def signed_file_url(
    backend: StorageBackend, name: str, path: str, expires_in: int = DEFAULT_EXPIRES
) -> str:
    """A presigned URL of one existing file of directory ``name`` (one stat request)."""
    ensure_direct_urls(backend)
    url = backend.signed_url(name, path, expires_in)  # 409 before any request on shared_fs
    backend.stat(name, path)
    return url
