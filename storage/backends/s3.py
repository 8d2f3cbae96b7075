"""Checkpoints in an S3 (or S3-compatible, e.g. MinIO) bucket: ``<prefix>/<uuid>/<relpath>``."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from ckptweb.lib.paths import check_relative_path
from storage.backends.base import (
    FileNotFoundInStorage,
    StorageError,
    StoredFile,
    StreamReader,
    TransientStorageError,
)
from storage.backends.object_store import ObjectStoreBackend
from storage.choices import StorageType

#: S3 error codes worth retrying besides any 5xx.
TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
}
NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}


@functools.lru_cache(maxsize=32)
def _s3_client(endpoint_url: str, access_key: str, secret_key: str):
    """A boto3 S3 client; explicit keys when given, else boto3's default credential chain."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=20,
            signature_version="s3v4",  # presigned URLs too (SigV4 allows up to 7 days)
        ),
    )


class S3Backend(ObjectStoreBackend):
    """Objects under ``<prefix>/<uuid>/``; deletes in DeleteObjects batches of 1,000 keys."""

    storage_type = StorageType.S3
    parameters = ("bucket", "prefix", "endpoint_url", "access_key", "secret_key")
    required_parameters = ("bucket",)
    sensitive_parameters = ("access_key", "secret_key")
    url_parameters = ("endpoint_url",)
    delete_batch_size = 1000
    ranged_listing = True

    @property
    def client(self):
        """The (cached) boto3 client for this config."""
        config = self.config
        return _s3_client(config.endpoint_url, config.access_key, config.secret_key)

    @property
    def bucket(self) -> str:
        return self.config.bucket

    # Errors -------------------------------------------------------------------------

    def translate(self, exc: Exception, action: str) -> StorageError:
        """Map a boto3/botocore exception to a secret-free StorageError subclass."""
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        if isinstance(exc, ClientError):
            return self._client_error(exc, action)
        if isinstance(exc, ConnectionError | HTTPClientError):
            return TransientStorageError(self.scrub(f"S3 {action} failed: {exc}"))
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StorageError(f"S3 {action} failed: no usable AWS credentials")
        return StorageError(self.scrub(f"S3 {action} failed: {exc}"))

    def _client_error(self, exc, action: str) -> StorageError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = self.scrub(f"S3 {action} failed: {code} {error.get('Message', '')}".strip())
        if code in NOT_FOUND_CODES:
            return FileNotFoundInStorage(message)
        if status >= 500 or status == 429 or code in TRANSIENT_CODES:
            return TransientStorageError(message)
        return StorageError(message)

    # Reads --------------------------------------------------------------------------

    def iter_objects(self, prefix: str, delimiter: str = "") -> Iterator[dict]:
        """Pages of ListObjectsV2 under ``prefix``, streamed."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        with self.errors(f"listing {prefix or '/'}"):
            yield from paginator.paginate(**kwargs)

    def iter_entries(self, prefix: str) -> Iterator[StoredFile]:
        """Every object under ``prefix``, in key order (ListObjectsV2 pages)."""
        for page in self.iter_objects(prefix):
            for obj in page.get("Contents", []):
                modified = obj.get("LastModified")
                yield StoredFile(
                    path=obj["Key"],
                    size=int(obj.get("Size", 0)),
                    modified=modified.timestamp() if modified else None,
                    etag=obj.get("ETag"),
                )

    def list_range(self, start_after: str, max_keys: int) -> tuple[list[str], bool]:
        """One ListObjectsV2 of the base prefix with ``StartAfter``."""
        base = self.base_prefix
        with self.errors(f"listing {base or '/'}"):
            page = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=base, StartAfter=start_after, MaxKeys=max_keys
            )
        keys = [obj["Key"] for obj in page.get("Contents", [])]
        return keys, bool(page.get("IsTruncated"))

    def stat(self, checkpoint_uuid: str, path: str) -> StoredFile:
        """HeadObject of one file."""
        key = self.object_key(checkpoint_uuid, path)
        with self.errors(f"reading {check_relative_path(path)}"):
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        return StoredFile(
            path=check_relative_path(path),
            size=head["ContentLength"],
            modified=head["LastModified"].timestamp(),
            etag=head.get("ETag"),
        )

    def open(self, checkpoint_uuid: str, path: str, start: int = 0, end: int | None = None):
        """One streamed GetObject, ranged when a range is asked for."""
        key = self.object_key(checkpoint_uuid, path)
        relative = check_relative_path(path)
        if end is not None and end <= start:
            self.stat(checkpoint_uuid, path)  # still 404 for a missing file
            return StreamReader(lambda n: b"", 0)
        kwargs = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with self.errors(f"reading {relative}"):
                response = self.client.get_object(**kwargs)
        except StorageError as exc:
            if "InvalidRange" in str(exc):
                return StreamReader(lambda n: b"", 0)
            raise
        body = response["Body"]
        return StreamReader(
            body.read,
            response["ContentLength"],
            close=body.close,
            translate=lambda exc: self.translate(exc, f"reading {relative}"),
            name=relative,
        )

    def signed_url(self, checkpoint_uuid: str, path: str, expires_in: int) -> str:
        """A SigV4 presigned GetObject URL, signed locally by boto3 (no request)."""
        key = self.object_key(checkpoint_uuid, path)
        with self.errors(f"signing {check_relative_path(path)}"):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )

    # Uploads ------------------------------------------------------------------------

    def signed_put_url(
        self,
        checkpoint_uuid: str,
        path: str,
        expires_in: int,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> str:
        """A SigV4 presigned PutObject (or UploadPart) URL, signed locally by boto3."""
        params = {"Bucket": self.bucket, "Key": self.object_key(checkpoint_uuid, path)}
        method = "put_object"
        if upload_id is not None:
            method = "upload_part"
            params.update(UploadId=upload_id, PartNumber=part_number)
        with self.errors(f"signing an upload of {check_relative_path(path)}"):
            return self.client.generate_presigned_url(method, Params=params, ExpiresIn=expires_in)

    def start_multipart(self, checkpoint_uuid: str, path: str) -> str:
        key = self.object_key(checkpoint_uuid, path)
        with self.errors(f"starting a multipart upload of {check_relative_path(path)}"):
            return self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]

    def complete_multipart(
        self, checkpoint_uuid: str, path: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        key = self.object_key(checkpoint_uuid, path)
        assembly = {"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]}
        with self.errors(f"completing the multipart upload of {check_relative_path(path)}"):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=assembly
            )

    def uploaded_parts(
        self, checkpoint_uuid: str, path: str, upload_id: str
    ) -> dict[int, tuple[int, str]]:
        """ListParts, page by page (1,000 parts each)."""
        key = self.object_key(checkpoint_uuid, path)
        found = {}
        with self.errors(f"listing the uploaded parts of {check_relative_path(path)}"):
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                for part in page.get("Parts", []):
                    found[int(part["PartNumber"])] = (int(part["Size"]), part["ETag"])
        return found

    def abort_multipart(self, checkpoint_uuid: str, path: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        key = self.object_key(checkpoint_uuid, path)
        action = f"aborting the multipart upload of {check_relative_path(path)}"
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":  # gone already
                raise self.translate(exc, action) from None
        except Exception as exc:
            raise self.translate(exc, action) from None

    # Deletes ------------------------------------------------------------------------

    def delete_objects(self, keys: list[str]) -> dict[str, str]:
        """One DeleteObjects call; returns ``{key: error}`` for the keys S3 refused."""
        with self.errors("deleting objects"):
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        return {
            error["Key"]: self.scrub(f"{error.get('Code', '')} {error.get('Message', '')}".strip())
            for error in response.get("Errors", [])
        }

    # Scans --------------------------------------------------------------------------

    def check_connection(self) -> None:
        """List at most one key under the prefix: proves endpoint, credentials and bucket."""
        with self.errors(f"listing bucket {self.bucket}"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.base_prefix, MaxKeys=1)

    def iter_checkpoint_dirs(self) -> Iterator[str]:
        """The ``<uuid>/`` common prefixes directly under ``<prefix>/``."""
        base = self.base_prefix
        for page in self.iter_objects(base, delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(base) :].rstrip("/")
                if name:
                    yield name
