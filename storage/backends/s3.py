"""Checkpoints in an S3 (or S3-compatible, e.g. MinIO) bucket: ``<prefix>/<uuid>/<relpath>``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from storage.backends.base import (
    DeleteResult,
    FileNotFoundInStorage,
    ObjectStoreBackend,
    StorageError,
    StoredFile,
    StreamReader,
    TransientStorageError,
    check_uuid,
)
from storage.paths import UnsafePath, check_relative_path

logger = logging.getLogger(__name__)

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

    parameters = ("bucket", "prefix", "endpoint_url", "access_key", "secret_key")
    sensitive_parameters = ("access_key", "secret_key")
    delete_batch_size = 1000

    @property
    def client(self):
        """The (cached) boto3 client for this config."""
        config = self.config
        return _s3_client(config.endpoint_url, config.access_key, config.secret_key)

    @property
    def bucket(self) -> str:
        return self.config.bucket

    def key(self, checkpoint_uuid, path: str) -> str:
        """The object key of one checked relative path."""
        return self.checkpoint_prefix(checkpoint_uuid) + check_relative_path(path)

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

    @contextmanager
    def errors(self, action: str):
        """Re-raise anything from boto3 as a StorageError describing ``action``."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            raise self.translate(exc, action) from None

    # Reads --------------------------------------------------------------------------

    def iter_objects(self, prefix: str, delimiter: str = "") -> Iterator[dict]:
        """Pages of ListObjectsV2 under ``prefix``, streamed."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        with self.errors(f"listing {prefix or '/'}"):
            yield from paginator.paginate(**kwargs)

    def list_files(self, checkpoint_uuid: str) -> list[StoredFile]:
        """Objects under the checkpoint prefix whose relative keys are safe paths."""
        prefix = self.checkpoint_prefix(checkpoint_uuid)
        files = []
        for page in self.iter_objects(prefix):
            for obj in page.get("Contents", []):
                relative = self._safe_relative(obj["Key"], prefix)
                if relative is not None:
                    files.append(
                        StoredFile(
                            path=relative,
                            size=obj["Size"],
                            modified=obj["LastModified"].timestamp(),
                            etag=obj.get("ETag"),
                        )
                    )
        return sorted(files, key=lambda stored: stored.path)

    def stat(self, checkpoint_uuid: str, path: str) -> StoredFile:
        """HeadObject of one file."""
        key = self.key(checkpoint_uuid, path)
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
        key = self.key(checkpoint_uuid, path)
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
        key = self.key(checkpoint_uuid, path)
        with self.errors(f"signing {check_relative_path(path)}"):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )

    # Deletes ------------------------------------------------------------------------

    def delete_checkpoints(self, checkpoint_uuids: Iterable[str]) -> DeleteResult:
        """Delete all objects under each checkpoint prefix, 1,000 keys per request.

        The keys are found by ``_keys_of`` with ranged listings (see there), so deleting
        many checkpoints costs about one request per 1,000 objects rather than one
        listing per checkpoint.
        """
        result = DeleteResult()
        targets: set[str] = set()
        for checkpoint_uuid in checkpoint_uuids:
            name = str(checkpoint_uuid)
            try:
                targets.add(check_uuid(name))
            except UnsafePath as exc:
                result.errors[name] = str(exc)
        totals = dict.fromkeys(targets, 0)
        batch: list[tuple[str, str]] = []  # (checkpoint uuid, key)
        try:
            for name, key in self._keys_of(sorted(targets)):
                totals[name] += 1
                batch.append((name, key))
                if len(batch) >= self.delete_batch_size:
                    self._flush(batch, result)
        except StorageError as exc:
            # Keys already listed are deleted below; the checkpoints not yet fully listed
            # are reported failed (they may keep files) and are retried as a whole.
            listed_through = getattr(exc, "listed_through", "")
            for name in targets:
                if name >= listed_through:
                    result.errors[name] = str(exc)
        self._flush(batch, result)
        self._summarize(result, totals)
        return result

    def _keys_of(self, targets: list[str]) -> Iterator[tuple[str, str]]:
        """(uuid, key) of every object under the sorted ``targets``' prefixes.

        Ranged listing: ListObjectsV2 of the whole base prefix with ``StartAfter`` just
        before the next target still to list, at most 1,000 keys a page. A page that runs
        into other checkpoints' keys is not wasted: it covers every target it passes, and
        the next request jumps straight to the first target it did not reach. So a sparse
        set of targets costs one request each (as a listing per checkpoint would), and a
        dense one about one request per 1,000 objects.
        """
        base = self.base_prefix
        index, start_after = 0, None
        keys_seen = 0
        while index < len(targets):
            # Ask for about as many keys as the remaining targets hold (from the keys per
            # target seen so far), so a page is not mostly other checkpoints' keys.
            per_target = keys_seen / index if index else 3
            max_keys = min(1000, max(16, int(per_target * (len(targets) - index) * 1.25) + 1))
            if start_after is None:
                start_after = base + targets[index]  # every "<uuid>/..." key sorts after it
            try:
                with self.errors(f"listing {base or '/'}"):
                    page = self.client.list_objects_v2(
                        Bucket=self.bucket, Prefix=base, StartAfter=start_after, MaxKeys=max_keys
                    )
            except StorageError as exc:
                exc.listed_through = targets[index]
                raise
            contents = page.get("Contents", [])
            if contents and contents[0]["Key"] <= start_after:
                # A store that ignores StartAfter: list the rest one checkpoint at a time.
                yield from self._keys_one_by_one(targets[index:])
                return
            wanted = set(targets[index:])
            for obj in contents:
                name = obj["Key"][len(base) :].split("/", 1)[0]
                if name in wanted and obj["Key"].startswith(f"{base}{name}/"):
                    keys_seen += 1
                    yield name, obj["Key"]
            if not page.get("IsTruncated") or not contents:
                return
            last_key = contents[-1]["Key"]
            reached = last_key[len(base) :].split("/", 1)[0]
            while index < len(targets) and targets[index] < reached:
                index += 1
            # Inside a target, continue right after the last key; else jump to the next one.
            inside = index < len(targets) and targets[index] == reached
            start_after = last_key if inside else None

    def _keys_one_by_one(self, targets: list[str]) -> Iterator[tuple[str, str]]:
        """(uuid, key) of each target's objects, one prefix listing per target."""
        for index, name in enumerate(targets):
            prefix = self.checkpoint_prefix(name)
            try:
                for page in self.iter_objects(prefix):
                    for obj in page.get("Contents", []):
                        if obj["Key"].startswith(prefix):
                            yield name, obj["Key"]
            except StorageError as exc:
                exc.listed_through = targets[index]
                raise

    def _flush(self, batch: list[tuple[str, str]], result: DeleteResult) -> None:
        """Send one DeleteObjects request for ``batch`` and record its per-key errors."""
        if not batch:
            return
        keys = [key for _uuid, key in batch]
        result.requests += 1
        try:
            failures = self.delete_objects(keys)
        except StorageError as exc:
            failures = dict.fromkeys(keys, str(exc))
        result.deleted_files += len(keys) - len(failures)
        result.object_errors.update(failures)
        batch.clear()

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
