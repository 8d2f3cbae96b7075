"""Checkpoints in an Azure Blob Storage container: ``<prefix>/<uuid>/<relpath>``.

The account is reached with either a connection string (which carries the account name,
the endpoint and an AccountKey or a SAS) or an ``account_url`` plus an optional
``credential``: an account key, or a SAS token (``sv=...&sig=...``); with neither, the
container must allow anonymous reads. Both the connection string and the credential are
secrets (``StorageConfig.scrub`` also removes the AccountKey inside the string).

Deletes go through Blob Batch requests (``delete_blobs``, 256 sub-requests each); a blob
that cannot be deleted (a lease held on it, say) is reported per object, as on S3/GCS.
Downloads stream 4 MiB chunks so memory stays bounded whatever the file size.

Direct downloads are read-only blob SAS URLs signed locally with the account key (from
the connection string, or ``credential`` when it is a key); a SAS credential cannot sign.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit, urlunsplit

from ckptweb.lib.paths import check_relative_path
from storage.backends.base import (
    DirectDownloadUnsupported,
    FileNotFoundInStorage,
    StorageError,
    StoredFile,
    StreamReader,
    TransientStorageError,
)
from storage.backends.object_store import ObjectStoreBackend
from storage.choices import StorageType

#: Bytes per download request; also the most a download holds in memory.
CHUNK_BYTES = 4 * 1024 * 1024
#: The Blob Batch API accepts at most 256 sub-requests per batch.
BATCH_LIMIT = 256


#: Connection-string keys whose values are secret (scrubbed from any text).
CONNECTION_STRING_SECRETS = ("AccountKey", "SharedAccessSignature")


def parse_connection_string(text: str) -> dict[str, str]:
    """The ``Key=Value;`` pairs of an Azure Storage connection string (keys as written).

    Values may contain ``=`` (base64 keys end in it); empty segments are ignored.
    """
    pairs = {}
    for segment in text.split(";"):
        key, sep, value = segment.strip().partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def account_name_of(url: str) -> str:
    """The storage account of a blob endpoint URL.

    ``https://<account>.blob.core.windows.net`` names it in the host; emulators such as
    Azurite (``http://127.0.0.1:10000/<account>``) in the first path segment.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        path_style = True
    except ValueError:
        path_style = host == "localhost" or "." not in host
    if path_style:
        return parts.path.strip("/").split("/", 1)[0]
    return host.split(".", 1)[0]


def is_sas_token(credential: str) -> bool:
    """True for a SAS token (``sv=...&sig=...``), False for an account key."""
    return "sig=" in credential


@functools.lru_cache(maxsize=32)
def _service_client(connection_string: str, account_url: str, credential: str):
    """A BlobServiceClient for one set of connection fields, with bounded chunk sizes."""
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    options = {
        "max_single_get_size": CHUNK_BYTES,
        "max_chunk_get_size": CHUNK_BYTES,
        "connection_timeout": 10,
        "read_timeout": 60,
        # The SDK's default backs off 15 s, 18 s, 24 s: far too long inside a web request.
        "retry_policy": ExponentialRetry(
            initial_backoff=0.5, increment_base=2, retry_total=2, random_jitter_range=0.5
        ),
    }
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, **options)
    secret = None
    if credential:
        if is_sas_token(credential):
            secret = credential.lstrip("?")
        else:
            secret = {"account_name": account_name_of(account_url), "account_key": credential}
    return BlobServiceClient(account_url, credential=secret, **options)


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""


class AzureBackend(ObjectStoreBackend):
    """Blobs under ``<prefix>/<uuid>/`` of one container; deletes in Blob Batch requests."""

    storage_type = StorageType.AZURE
    parameters = ("container", "prefix", "connection_string", "account_url", "credential")
    required_parameters = ("container",)
    exclusive_parameters = (("connection_string", "account_url"),)
    sensitive_parameters = ("connection_string", "credential")
    url_parameters = ("account_url",)
    delete_batch_size = BATCH_LIMIT

    @classmethod
    def parameter_errors(cls, values: dict[str, str]) -> dict[str, str]:
        """The common rules; ``credential`` only with ``account_url``; a real connection string."""
        errors = super().parameter_errors(values)
        if values.get("credential") and not values.get("account_url"):
            errors.setdefault(
                "credential", "needs account_url (a connection string carries its own key)."
            )
        connection_string = values.get("connection_string")
        if connection_string and "connection_string" not in errors:
            pairs = parse_connection_string(connection_string)
            if not (pairs.get("AccountName") or pairs.get("BlobEndpoint")):
                errors["connection_string"] = (
                    "is not an Azure Storage connection string "
                    "(expected AccountName=...;AccountKey=... or BlobEndpoint=... pairs)."
                )
        return errors

    @property
    def service(self):
        """The (cached) BlobServiceClient of this config."""
        config = self.config
        with self.errors("connecting"):
            return _service_client(config.connection_string, config.account_url, config.credential)

    @property
    def container(self):
        return self.service.get_container_client(self.config.container)

    # Errors -------------------------------------------------------------------------

    def translate(self, exc: Exception, action: str) -> StorageError:
        """Map an azure-core exception to a secret-free, one-line StorageError subclass."""
        from azure.core import exceptions as azure

        if isinstance(exc, azure.ResourceNotFoundError):
            return FileNotFoundInStorage(self.scrub(f"Azure {action} failed: not found"))
        if isinstance(exc, azure.HttpResponseError):
            status = exc.status_code or 0
            code = getattr(exc, "error_code", None) or ""
            message = self.scrub(
                f"Azure {action} failed: HTTP {status} {code}: {_first_line(exc.message)}"
            )
            if status == 429 or status >= 500:
                return TransientStorageError(message)
            return StorageError(message)
        if isinstance(exc, azure.ServiceRequestError | azure.ServiceResponseError):
            return TransientStorageError(
                self.scrub(f"Azure {action} failed: {_first_line(str(exc))}")
            )
        if isinstance(exc, ValueError):  # the SDK's complaint about a malformed setting
            return StorageError(self.scrub(f"Azure {action} failed: {_first_line(str(exc))}"))
        return StorageError(
            self.scrub(f"Azure {action} failed: {type(exc).__name__}: {_first_line(str(exc))}")
        )

    # Reads --------------------------------------------------------------------------

    def iter_entries(self, prefix: str) -> Iterator[StoredFile]:
        """Every blob under ``prefix``, in name order, streamed page by page."""
        with self.errors(f"listing {prefix or '/'}"):
            for blob in self.container.list_blobs(name_starts_with=prefix):
                yield self._stored(blob, blob.name)

    @staticmethod
    def _stored(blob, relative: str) -> StoredFile:
        etag = blob.etag or None
        if etag and not etag.startswith('"'):
            etag = f'"{etag}"'
        return StoredFile(
            path=relative,
            size=int(blob.size or 0),
            modified=blob.last_modified.timestamp() if blob.last_modified else None,
            etag=etag,
        )

    def stat(self, checkpoint_uuid: str, path: str) -> StoredFile:
        """The properties of one blob."""
        relative = check_relative_path(path)
        name = self.object_key(checkpoint_uuid, path)
        try:
            with self.errors(f"reading {relative}"):
                properties = self.container.get_blob_client(name).get_blob_properties()
        except FileNotFoundInStorage:
            raise FileNotFoundInStorage(f"{relative} not found") from None
        return self._stored(properties, relative)

    def open(self, checkpoint_uuid: str, path: str, start: int = 0, end: int | None = None):
        """A streamed (ranged) download, fetched 4 MiB at a time as it is read."""
        relative = check_relative_path(path)
        name = self.object_key(checkpoint_uuid, path)
        if end is not None and end <= start:
            self.stat(checkpoint_uuid, path)  # still 404 for a missing file
            return StreamReader(lambda n: b"", 0)
        length = None if end is None else end - start
        try:
            with self.errors(f"reading {relative}"):
                downloader = self.container.download_blob(
                    name,
                    offset=start if (start or length is not None) else None,
                    length=length,
                    max_concurrency=1,
                )
        except FileNotFoundInStorage:
            raise FileNotFoundInStorage(f"{relative} not found") from None
        except StorageError as exc:
            if "InvalidRange" in str(exc) or "HTTP 416" in str(exc):
                return StreamReader(lambda n: b"", 0)
            raise
        return StreamReader(
            downloader.read,
            int(downloader.size),
            translate=lambda exc: self.translate(exc, f"reading {relative}"),
            name=relative,
        )

    def account_key(self) -> tuple[str, str]:
        """``(account name, account key)`` for signing, else DirectDownloadUnsupported."""
        config = self.config
        if config.connection_string:
            pairs = parse_connection_string(config.connection_string)
            name, key = pairs.get("AccountName", ""), pairs.get("AccountKey", "")
            if not name and pairs.get("BlobEndpoint"):
                name = account_name_of(pairs["BlobEndpoint"])
        else:
            name = account_name_of(config.account_url)
            key = "" if is_sas_token(config.credential) else config.credential
        if not (name and key):
            raise DirectDownloadUnsupported(
                "Azure direct downloads need the account key (AccountKey in the connection "
                "string, or as credential) to sign SAS URLs."
            )
        return name, key

    def signed_url(self, checkpoint_uuid: str, path: str, expires_in: int) -> str:
        """A read-only blob SAS URL, signed locally with the account key."""
        from azure.storage.blob import BlobSasPermissions

        return self._sas_url(checkpoint_uuid, path, expires_in, BlobSasPermissions(read=True))

    def _sas_url(self, checkpoint_uuid: str, path: str, expires_in: int, permission) -> str:
        from azure.storage.blob import generate_blob_sas

        relative = check_relative_path(path)
        name = self.object_key(checkpoint_uuid, relative)
        account, key = self.account_key()
        now = datetime.now(UTC)
        with self.errors(f"signing {relative}"):
            sas = generate_blob_sas(
                account_name=account,
                container_name=self.config.container,
                blob_name=name,
                account_key=key,
                permission=permission,
                start=now - timedelta(minutes=5),  # tolerate clock skew
                expiry=now + timedelta(seconds=expires_in),
            )
            # The blob URL repeats the query of account_url (or BlobEndpoint): a SAS there
            # would hand every user an account-wide token. Only this blob's SAS is appended.
            blob_url = urlsplit(self.container.get_blob_client(name).url)._replace(query="")
            return f"{urlunsplit(blob_url)}?{sas}"

    # Uploads: every file is a block blob whose blocks the client PUTs and ckptweb commits.

    #: Every file goes in blocks (a plain PUT would need the x-ms-blob-type header); the
    #: block ids follow from the part numbers, so ``complete`` needs no ETags.
    uploads_in_blocks = True
    multipart_needs_etags = False

    def signed_put_url(
        self,
        checkpoint_uuid: str,
        path: str,
        expires_in: int,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> str:
        """A write-only blob SAS URL; with a part number, the Put Block URL of that block."""
        from azure.storage.blob import BlobSasPermissions

        url = self._sas_url(checkpoint_uuid, path, expires_in, BlobSasPermissions(write=True))
        if part_number is None:
            return url
        block_id = base64.b64encode(_block_id(part_number).encode()).decode()
        return f"{url}&comp=block&blockid={quote(block_id, safe='')}"

    def start_multipart(self, checkpoint_uuid: str, path: str) -> str:
        """Nothing to start: blocks are staged by their PUTs (no request)."""
        return "blocks"

    def complete_multipart(
        self, checkpoint_uuid: str, path: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Commit the blob from its blocks, in part order."""
        from azure.storage.blob import BlobBlock

        name = self.object_key(checkpoint_uuid, path)
        blocks = [BlobBlock(block_id=_block_id(number)) for number, _ in sorted(parts)]
        with self.errors(f"committing the blocks of {check_relative_path(path)}"):
            self.container.get_blob_client(name).commit_block_list(blocks)

    def abort_multipart(self, checkpoint_uuid: str, path: str, upload_id: str) -> None:
        """Nothing to send: Azure drops uncommitted blocks of a blob that never commits
        (after 7 days); they are no blob, so no listing or scan sees them."""

    def uploaded_parts(
        self, checkpoint_uuid: str, path: str, upload_id: str
    ) -> dict[int, tuple[int, str]]:
        """The blob's uncommitted blocks (none while no block has arrived)."""
        from azure.core.exceptions import ResourceNotFoundError

        name = self.object_key(checkpoint_uuid, path)
        found = {}
        with self.errors(f"listing the uploaded blocks of {check_relative_path(path)}"):
            try:
                _, uncommitted = self.container.get_blob_client(name).get_block_list("uncommitted")
            except ResourceNotFoundError:
                return {}
            for block in uncommitted:
                if block.id.isdigit():
                    found[int(block.id)] = (int(block.size), "")
        return found

    # Deletes ------------------------------------------------------------------------

    def delete_objects(self, names: list[str]) -> dict[str, str]:
        """One Blob Batch request deleting ``names``; ``{name: error}`` for the refused.

        A 404 means the blob is already gone, which is what a delete wants.
        """
        with self.errors("deleting blobs"):
            responses = list(self.container.delete_blobs(*names, raise_on_any_failure=False))
        failures = {}
        for name, response in zip(names, responses, strict=False):
            status = response.status_code
            if 200 <= status < 300 or status == 404:
                continue
            code = response.headers.get("x-ms-error-code", "") if response.headers else ""
            failures[name] = self.scrub(f"HTTP {status} {code}: {response.reason or 'error'}")
        for name in names[len(responses) :]:
            failures[name] = "no response in the batch reply"
        return failures

    # Scans --------------------------------------------------------------------------

    def check_connection(self) -> None:
        """List at most one blob under the prefix: proves endpoint, credentials, container."""
        with self.errors(f"listing container {self.config.container}"):
            pages = self.container.list_blobs(
                name_starts_with=self.base_prefix, results_per_page=1, timeout=10
            ).by_page()
            list(next(pages, []))

    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """The ``<uuid>/`` prefixes directly under ``<prefix>/``, page by page."""
        from azure.storage.blob import BlobPrefix

        base = self.base_prefix
        with self.errors(f"listing {base or '/'}"):
            for item in self.container.walk_blobs(name_starts_with=base, delimiter="/"):
                if isinstance(item, BlobPrefix):
                    name = item.name[len(base) :].rstrip("/")
                    if name:
                        yield name


def _block_id(number: int) -> str:
    """The block id of part ``number``, a fixed-width number (Azure wants every id of a
    blob the same length); on the wire it is base64, which the SDK adds by itself."""
    return f"{number:06d}"
