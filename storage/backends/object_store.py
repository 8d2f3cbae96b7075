"""What the object-store backends (S3, GCS, Azure) share: keys ``<prefix>/<uuid>/<path>``.

A store implements a few primitives: ``translate`` (its exceptions as StorageErrors),
``iter_entries(prefix)`` (a streamed listing in key order), ``delete_objects(keys)`` (one
batch request of at most ``delete_batch_size`` keys) and, where it can list from a given
key on, ``list_range``. File lists, whole-storage listings and deletions are written here,
once.

Deleting many checkpoints lists by ranges where the store can (``ranged_listing``): one
listing of the whole base prefix starting just before the next checkpoint still to list,
at most 1,000 keys a page. A page that runs into other checkpoints' keys is not wasted: it
covers every target it passes, and the next request jumps straight to the first target it
did not reach. So a sparse set of targets costs one request each (as a listing per
checkpoint would), a dense one about one request per 1,000 objects. A store that ignores
the start key (some S3-compatible ones, gcp-storage-emulator) is still exact: a complete
page is used as it is, a truncated one falls back to one listing per checkpoint. The keys
found are deleted in batches as they come, so memory stays bounded by one batch.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ckptweb.lib.paths import UnsafePath, check_relative_path, is_safe_relative_path
from storage.backends.base import (
    DeleteResult,
    ListedDirectory,
    StorageBackend,
    StorageError,
    StoredFile,
    check_uuid,
    summarize_object_errors,
)

logger = logging.getLogger(__name__)


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` is not a safe key prefix (phrased after the field name), else None."""
    if ".." in prefix:
        return "must not contain '..'."
    try:
        check_relative_path(prefix.rstrip("/"))
    except UnsafePath as exc:
        return f"is not a safe relative prefix: {exc}."
    return None


class ObjectStoreBackend(StorageBackend):
    """Objects under ``<prefix>/<uuid>/`` of one bucket or container."""

    #: Most keys one delete request may carry.
    delete_batch_size: int
    #: Whether ``list_range`` lists from a start key (else deletes list each checkpoint).
    ranged_listing = False

    @classmethod
    def parameter_errors(cls, values: dict[str, str]) -> dict[str, str]:
        """The common rules, and a prefix that stays a safe relative path."""
        errors = super().parameter_errors(values)
        prefix = values.get("prefix")
        if prefix and "prefix" not in errors and (problem := prefix_problem(prefix)):
            errors["prefix"] = problem
        return errors

    @property
    def base_prefix(self) -> str:
        """``<prefix>/`` (checked), or empty for the bucket root."""
        prefix = self.config.prefix.strip("/")
        return f"{check_relative_path(prefix)}/" if prefix else ""

    def checkpoint_prefix(self, checkpoint_uuid) -> str:
        """``<prefix>/<uuid>/``."""
        return f"{self.base_prefix}{check_uuid(checkpoint_uuid)}/"

    def object_key(self, checkpoint_uuid, path: str) -> str:
        """``<prefix>/<uuid>/<path>`` for a checked relative path."""
        return self.checkpoint_prefix(checkpoint_uuid) + check_relative_path(path)

    # Primitives ---------------------------------------------------------------------

    @abc.abstractmethod
    def translate(self, exc: Exception, action: str) -> StorageError:
        """The provider's exception as a secret-free StorageError subclass."""

    @contextmanager
    def errors(self, action: str):
        """Re-raise anything from the client library as a StorageError about ``action``."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            raise self.translate(exc, action) from None

    @abc.abstractmethod
    def iter_entries(self, prefix: str) -> Iterator[StoredFile]:
        """Every object under ``prefix`` in key order, streamed; ``path`` is the whole key."""

    @abc.abstractmethod
    def delete_objects(self, keys: list[str]) -> dict[str, str]:
        """One batch delete request; ``{key: error}`` for the keys the store refused.

        A key that is already absent counts as deleted.
        """

    def list_range(self, start_after: str, max_keys: int) -> tuple[list[str], bool]:
        """Keys under the base prefix after ``start_after``, at most about ``max_keys``.

        Returns the keys in order and whether more follow. A store may include
        ``start_after`` itself, or ignore it; ``_keys_ranged`` copes with both.
        """
        raise NotImplementedError

    # Listings -----------------------------------------------------------------------

    def list_files(self, checkpoint_uuid: str) -> list[StoredFile]:
        """Objects under the checkpoint prefix whose relative keys are safe paths."""
        return self.list_directory(checkpoint_uuid).files

    def list_directory(self, checkpoint_uuid: str) -> ListedDirectory:
        """The checkpoint prefix's objects; those with unsafe relative keys are counted."""
        prefix = self.checkpoint_prefix(checkpoint_uuid)
        listed = ListedDirectory(check_uuid(checkpoint_uuid))
        for entry in self.iter_entries(prefix):
            relative = entry.path[len(prefix) :]
            if not entry.path.startswith(prefix) or not relative or relative.endswith("/"):
                continue  # a "folder" marker
            listed.touch(entry.modified)
            if is_safe_relative_path(relative):
                listed.files.append(dataclasses.replace(entry, path=relative))
            else:
                logger.warning("Skipping object %r: not a safe relative path", entry.path)
                listed.unsafe += 1
        listed.files.sort(key=lambda stored: stored.path)
        return listed

    def iter_directories(self) -> Iterator[ListedDirectory]:
        """One paginated listing of the whole prefix, grouped by the key's first segment.

        Keys sharing a prefix ``<name>/`` are contiguous in lexicographic order, so a
        directory is complete as soon as a key outside it arrives. Objects directly under
        the prefix (not in a directory) are ignored.
        """
        base = self.base_prefix
        current: ListedDirectory | None = None
        for entry in self.iter_entries(base):
            name, slash, relative = entry.path[len(base) :].partition("/")
            if not entry.path.startswith(base) or not slash or not name:
                continue
            if current is None or name != current.name:
                if current is not None:
                    yield current
                current = ListedDirectory(name)
            current.touch(entry.modified)
            if not relative or relative.endswith("/"):
                continue  # a "folder" marker object
            if is_safe_relative_path(relative):
                current.files.append(StoredFile(relative, entry.size, entry.modified))
            else:
                current.unsafe += 1
        if current is not None:
            yield current

    # Deletes ------------------------------------------------------------------------

    def delete_checkpoints(self, checkpoint_uuids: Iterable[str]) -> DeleteResult:
        """Delete all objects under each checkpoint prefix, in batches of delete requests."""
        result = DeleteResult()
        targets: set[str] = set()
        for checkpoint_uuid in checkpoint_uuids:
            name = str(checkpoint_uuid)
            try:
                targets.add(check_uuid(name))
            except UnsafePath as exc:
                result.errors[name] = str(exc)
        try:
            self.base_prefix  # noqa: B018 - an unsafe prefix fails every checkpoint
        except UnsafePath as exc:
            result.errors.update(dict.fromkeys(targets, str(exc)))
            return result
        totals = dict.fromkeys(targets, 0)
        batch: list[str] = []
        for name, key in self._keys_of(sorted(targets), result):
            totals[name] += 1
            batch.append(key)
            if len(batch) >= self.delete_batch_size:
                self._flush(batch, result)
        self._flush(batch, result)
        self._summarize(result, totals)
        return result

    def _keys_of(self, targets: list[str], result: DeleteResult) -> Iterator[tuple[str, str]]:
        """(uuid, key) of every object of the sorted ``targets``.

        A checkpoint whose listing failed is in ``result.errors`` (its keys already listed
        are still deleted; it is retried as a whole).
        """
        if self.ranged_listing:
            return self._keys_ranged(targets, result)
        return self._keys_one_by_one(targets, result)

    def _keys_one_by_one(
        self, targets: list[str], result: DeleteResult
    ) -> Iterator[tuple[str, str]]:
        """(uuid, key) of each target's objects, one prefix listing per target."""
        for name in targets:
            prefix = self.checkpoint_prefix(name)
            try:
                for entry in self.iter_entries(prefix):
                    if entry.path.startswith(prefix):
                        yield name, entry.path
            except StorageError as exc:
                result.errors[name] = str(exc)

    def _keys_ranged(self, targets: list[str], result: DeleteResult) -> Iterator[tuple[str, str]]:
        """(uuid, key) of the targets' objects through ranged listings (module docstring)."""
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
                keys, truncated = self.list_range(start_after, max_keys)
            except StorageError as exc:
                result.errors.update(dict.fromkeys(targets[index:], str(exc)))
                return
            if truncated and keys and keys[0] < start_after:
                # The store ignored the start key: list the rest one checkpoint at a time.
                yield from self._keys_one_by_one(targets[index:], result)
                return
            wanted = set(targets[index:])
            for key in keys:
                name = key[len(base) :].split("/", 1)[0]
                if key > start_after and name in wanted and key.startswith(f"{base}{name}/"):
                    keys_seen += 1
                    yield name, key
            if not truncated or not keys:
                return
            reached = keys[-1][len(base) :].split("/", 1)[0]
            while index < len(targets) and targets[index] < reached:
                index += 1
            # Inside a target, continue right after the last key; else jump to the next one.
            inside = index < len(targets) and targets[index] == reached
            start_after = keys[-1] if inside else None

    def delete_files(self, checkpoint_uuid: str, paths: Iterable[str]) -> DeleteResult:
        """Delete the objects of ``paths`` in batches of ``delete_batch_size`` keys."""
        result = DeleteResult()
        name = str(checkpoint_uuid)
        keys: dict[str, str] = {}  # key -> relative path
        try:
            for path in paths:
                keys[self.object_key(name, path)] = path
        except UnsafePath as exc:
            result.errors[name] = str(exc)
            return result
        ordered = list(keys)
        for start in range(0, len(ordered), self.delete_batch_size):
            failures = self._send(ordered[start : start + self.delete_batch_size], result)
            result.object_errors.update({keys[key]: error for key, error in failures.items()})
        if result.object_errors:
            result.errors[name] = summarize_object_errors(result.object_errors, len(keys))
        return result

    def _send(self, keys: list[str], result: DeleteResult) -> dict[str, str]:
        """One delete request for ``keys``, counted in ``result``; ``{key: error}``."""
        result.requests += 1
        try:
            failures = self.delete_objects(keys)
        except StorageError as exc:
            failures = dict.fromkeys(keys, str(exc))
        result.deleted_files += len(keys) - len(failures)
        return failures

    def _flush(self, batch: list[str], result: DeleteResult) -> None:
        """Delete ``batch`` (then empty it) and record its per-key errors."""
        if batch:
            result.object_errors.update(self._send(list(batch), result))
            batch.clear()

    def _summarize(self, result: DeleteResult, totals: dict[str, int]) -> None:
        """Fold per-object errors into one line per checkpoint."""
        for checkpoint_uuid, total in totals.items():
            if checkpoint_uuid in result.errors:
                continue
            prefix = self.checkpoint_prefix(checkpoint_uuid)
            failed = {
                name[len(self.base_prefix) :]: error
                for name, error in result.object_errors.items()
                if name.startswith(prefix)
            }
            if failed:
                result.errors[checkpoint_uuid] = summarize_object_errors(failed, total)
