"""Checkpoints in a Google Cloud Storage bucket: ``<prefix>/<uuid>/<relpath>``.

Credentials come from Application Default Credentials. When ``STORAGE_EMULATOR_HOST`` is
set (gcp-storage-emulator, fake-gcs-server) the client talks to that host anonymously.

Signed URLs (direct downloads) are V4 signatures made locally with a service account's
private key: the client's own credentials when they can sign, else the key file named
by ``GOOGLE_APPLICATION_CREDENTIALS``. Against an emulator the URLs point at it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

from ckptweb.lib.paths import check_relative_path
from storage.backends import base
from storage.backends.object_store import ObjectStoreBackend
from storage.choices import StorageType

#: HTTP timeouts (connect, read) for streamed downloads.
DOWNLOAD_TIMEOUT = (10, 60)
#: How long the client library may keep retrying one call before giving up.
RETRY_DEADLINE = 30.0


@functools.lru_cache(maxsize=8)
def _gcs_client(emulator_host: str):
    """A storage client: anonymous against an emulator, else Application Default Credentials."""
    from google.cloud import storage

    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="ckptweb-emulator", credentials=AnonymousCredentials())
    return storage.Client()


@functools.lru_cache(maxsize=4)
def _key_file_credentials(path: str):
    """Service-account credentials (with their private key) from a JSON key file."""
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(path)


def _retry():
    """The library's default retry policy, with a deadline short enough for a web request."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(RETRY_DEADLINE)


def batch_errors(names: list[str], responses) -> dict[str, str]:
    """``{name: error}`` for the sub-requests of a batch delete that failed.

    A 404 means the object is already gone, which is what a delete wants.
    """
    failures = {}
    for name, response in zip(names, responses, strict=False):
        status = response.status_code
        if 200 <= status < 300 or status == 404:
            continue
        failures[name] = f"HTTP {status}: {_error_message(response)}"
    for name in names[len(responses) :]:
        failures[name] = "no response in the batch reply"
    return failures


def _error_message(response) -> str:
    """The ``error.message`` of a JSON error body, else the body's first line."""
    try:
        return str(json.loads(response.content)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        text = response.content.decode("utf-8", "replace") if response.content else ""
        return text.splitlines()[0][:200] if text else response.reason or "error"


class GCSBackend(ObjectStoreBackend):
    """Objects under ``<prefix>/<uuid>/``; ranged listings, JSON-API batch deletes."""

    storage_type = StorageType.GCS
    parameters = ("bucket", "prefix")
    required_parameters = ("bucket",)
    delete_batch_size = 100  # GCS accepts at most 100 calls per batch request
    ranged_listing = True

    @property
    def client(self):
        """The (cached) google-cloud-storage client for the current environment."""
        return _gcs_client(os.environ.get("STORAGE_EMULATOR_HOST", ""))

    @property
    def bucket(self):
        return self.client.bucket(self.config.bucket)

    # Errors -------------------------------------------------------------------------

    def translate(self, exc: Exception, action: str) -> base.StorageError:
        """Map google-cloud / requests exceptions to a secret-free StorageError subclass."""
        import requests
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        message = self.scrub(f"GCS {action} failed: {exc}")
        if isinstance(exc, api.NotFound):
            return base.FileNotFoundInStorage(message)
        if isinstance(exc, api.TooManyRequests | api.ServerError | api.RetryError):
            return base.TransientStorageError(message)
        if isinstance(exc, requests.ConnectionError | requests.Timeout | auth.TransportError):
            return base.TransientStorageError(message)
        if isinstance(exc, auth.DefaultCredentialsError):
            return base.StorageError(f"GCS {action} failed: no Application Default Credentials")
        return base.StorageError(message)

    # Reads --------------------------------------------------------------------------

    def iter_entries(self, prefix: str) -> Iterator[base.StoredFile]:
        """Every blob under ``prefix``, in name order, streamed page by page."""
        with self.errors(f"listing {prefix or '/'}"):
            for blob in self.client.list_blobs(self.config.bucket, prefix=prefix, retry=_retry()):
                yield self._stored(blob, blob.name)

    def list_range(self, start_after: str, max_keys: int) -> tuple[list[str], bool]:
        """One page of the base prefix from ``startOffset`` (inclusive), ``maxResults`` long.

        Only the first page is read: its next-page token says whether more follow. (The
        gcp-storage-emulator ignores both parameters and sends everything in one page.)
        """
        base = self.base_prefix
        with self.errors(f"listing {base or '/'}"):
            blobs = self.client.list_blobs(
                self.config.bucket,
                prefix=base,
                start_offset=start_after,
                page_size=max_keys,
                retry=_retry(),
            )
            page = next(blobs.pages, None)
            names = [blob.name for blob in page] if page is not None else []
        return names, blobs.next_page_token is not None

    @staticmethod
    def _stored(blob, relative: str) -> base.StoredFile:
        return base.StoredFile(
            path=relative,
            size=int(blob.size or 0),
            modified=blob.updated.timestamp() if blob.updated else None,
            etag=f'"{blob.etag}"' if blob.etag else None,
        )

    def stat(self, checkpoint_uuid: str, path: str) -> base.StoredFile:
        """Metadata of one blob."""
        relative = check_relative_path(path)
        with self.errors(f"reading {relative}"):
            blob = self.bucket.get_blob(self.object_key(checkpoint_uuid, path), retry=_retry())
        if blob is None:
            raise base.FileNotFoundInStorage(f"{relative} not found")
        return self._stored(blob, relative)

    def media_url(self, name: str) -> str:
        """The JSON API media download URL of one object."""
        bucket = quote(self.config.bucket, safe="")
        return (
            f"{self.client.api_endpoint}/download/storage/v1/b/{bucket}"
            f"/o/{quote(name, safe='')}?alt=media"
        )

    def open(self, checkpoint_uuid: str, path: str, start: int = 0, end: int | None = None):
        """One streamed media GET (ranged when asked); stored bytes, never transcoded."""
        relative = check_relative_path(path)
        name = self.object_key(checkpoint_uuid, path)
        if end is not None and end <= start:
            self.stat(checkpoint_uuid, path)
            return base.StreamReader(lambda n: b"", 0)
        headers = {"Accept-Encoding": "gzip"}  # send stored bytes as they are
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self.errors(f"reading {relative}"):
            response = self.client._http.get(  # the client's authorised session
                self.media_url(name), headers=headers, stream=True, timeout=DOWNLOAD_TIMEOUT
            )
        return self._reader(response, relative, bool(start or end is not None))

    def _reader(self, response, relative: str, ranged: bool) -> base.StreamReader:
        """Check the download's status and wrap its raw body."""
        status = response.status_code
        if status == 416:
            response.close()
            return base.StreamReader(lambda n: b"", 0)
        if status >= 400:
            message = _error_message(response)
            response.close()
            error = f"GCS reading {relative} failed: HTTP {status}: {message}"
            if status == 404:
                raise base.FileNotFoundInStorage(f"{relative} not found")
            if status == 429 or status >= 500:
                raise base.TransientStorageError(self.scrub(error))
            raise base.StorageError(self.scrub(error))
        if ranged and status != 206:
            response.close()
            raise base.StorageError(f"GCS reading {relative} failed: the server ignored Range")
        raw = response.raw
        return base.StreamReader(
            functools.partial(raw.read, decode_content=False),
            int(response.headers.get("Content-Length", 0)),
            close=response.close,
            translate=lambda exc: self.translate(exc, f"reading {relative}"),
            name=relative,
        )

    def signing_credentials(self):
        """Credentials that can sign locally (a service account's key), else StorageError."""
        own = getattr(self.client, "_credentials", None)
        if hasattr(own, "sign_bytes") and getattr(own, "signer_email", None):
            return own
        path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
        if path:
            with self.errors("loading the service-account key"):
                return _key_file_credentials(path)
        raise base.DirectDownloadUnsupported(
            "GCS direct downloads need service-account credentials that can sign URLs: "
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file."
        )

    def signed_url(self, checkpoint_uuid: str, path: str, expires_in: int) -> str:
        """A V4 signed GET URL, signed locally with the service account's key."""
        relative = check_relative_path(path)
        blob = self.bucket.blob(self.object_key(checkpoint_uuid, relative))
        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
        with self.errors(f"signing {relative}"):
            return blob.generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=expires_in),
                method="GET",
                credentials=self.signing_credentials(),
                **({"api_access_endpoint": emulator} if emulator else {}),
            )

    # Uploads: a small file is one signed PUT; a large one comes in part objects beside
    # it (``<path>.ckptweb-part-NNNNN``) that ``complete_multipart`` composes, then deletes.

    #: The parts are objects the server knows by name: ``complete`` needs no ETags.
    multipart_needs_etags = False

    def signed_put_url(
        self,
        checkpoint_uuid: str,
        path: str,
        expires_in: int,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> str:
        """A V4 signed PUT URL of the file, or of its part object ``part_number``."""
        relative = check_relative_path(path)
        target = relative if part_number is None else _part_name(relative, part_number)
        blob = self.bucket.blob(self.object_key(checkpoint_uuid, target))
        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
        with self.errors(f"signing an upload of {relative}"):
            return blob.generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=expires_in),
                method="PUT",
                credentials=self.signing_credentials(),
                **({"api_access_endpoint": emulator} if emulator else {}),
            )

    def start_multipart(self, checkpoint_uuid: str, path: str) -> str:
        """Nothing to start: the parts are plain objects (no request)."""
        return "compose"

    def complete_multipart(
        self, checkpoint_uuid: str, path: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Compose the part objects into the file (32 at a time, in rounds), then delete
        the parts; a missing part is an error naming the file."""
        relative = check_relative_path(path)
        names = [
            self.object_key(checkpoint_uuid, _part_name(relative, n)) for n, _ in sorted(parts)
        ]
        made: list[str] = []
        level = 0
        with self.errors(f"composing {relative}"):
            while len(names) > COMPOSE_SOURCES:
                level += 1
                grouped = []
                for index in range(0, len(names), COMPOSE_SOURCES):
                    name = f"{names[0]}-c{level}-{index // COMPOSE_SOURCES}"
                    sources = [self.bucket.blob(n) for n in names[index : index + COMPOSE_SOURCES]]
                    self.bucket.blob(name).compose(sources)
                    grouped.append(name)
                made += grouped
                names = grouped
            target = self.bucket.blob(self.object_key(checkpoint_uuid, relative))
            target.compose([self.bucket.blob(n) for n in names])
        parts_and_rounds = [
            self.object_key(checkpoint_uuid, _part_name(relative, n)) for n, _ in parts
        ]
        failures = self.delete_objects(parts_and_rounds + made)
        if failures:
            raise base.StorageError(f"composed {relative}, but its parts stay: {failures}")

    def abort_multipart(self, checkpoint_uuid: str, path: str, upload_id: str) -> None:
        """Nothing to send: the part objects lie in the directory the abort deletes."""

    def uploaded_parts(
        self, checkpoint_uuid: str, path: str, upload_id: str
    ) -> dict[int, tuple[int, str]]:
        """The part objects beside the file (``<path>.ckptweb-part-NNNNN``)."""
        relative = check_relative_path(path)
        prefix = self.object_key(checkpoint_uuid, relative + base.UPLOAD_PART_MARK)
        found = {}
        with self.errors(f"listing the uploaded parts of {relative}"):
            for blob in self.client.list_blobs(self.config.bucket, prefix=prefix, retry=_retry()):
                number = blob.name[len(prefix) :]
                if number.isdigit():  # not a compose round's intermediate object
                    found[int(number)] = (int(blob.size or 0), blob.etag or "")
        return found

    # Deletes ------------------------------------------------------------------------

    def delete_objects(self, names: list[str]) -> dict[str, str]:
        """One batch request deleting ``names``; returns ``{name: error}`` for failures."""
        bucket = self.bucket
        with self.errors("deleting objects"):
            with self.client.batch(raise_exception=False) as batch:
                for name in names:
                    bucket.delete_blob(name)
            # The library keeps each sub-response, in request order, on the batch.
            responses = batch._responses
        return {name: self.scrub(error) for name, error in batch_errors(names, responses).items()}

    # Scans --------------------------------------------------------------------------

    def check_connection(self) -> None:
        """List at most one blob under the prefix: proves endpoint, credentials and bucket."""
        with self.errors(f"listing bucket {self.config.bucket}"):
            blobs = self.client.list_blobs(
                self.config.bucket,
                prefix=self.base_prefix,
                max_results=1,
                retry=_retry().with_timeout(min(RETRY_DEADLINE, 10.0)),
                timeout=10,
            )
            list(blobs)

    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """The ``<uuid>/`` prefixes directly under ``<prefix>/``, page by page."""
        base = self.base_prefix
        with self.errors(f"listing {base or '/'}"):
            blobs = self.client.list_blobs(
                self.config.bucket, prefix=base, delimiter="/", retry=_retry()
            )
            for page in blobs.pages:
                for prefix in sorted(page.prefixes):
                    name = prefix[len(base) :].rstrip("/")
                    if name:
                        yield name


#: Sources of one GCS compose request.
COMPOSE_SOURCES = 32


def _part_name(relative: str, number: int) -> str:
    """The object of part ``number`` of an uploaded file, beside it in its directory."""
    return f"{relative}{base.UPLOAD_PART_MARK}{number:05d}"
