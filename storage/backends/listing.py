"""Streaming listings of a whole storage, one checkpoint directory at a time (for scans).

The listing itself is the backend method ``StorageBackend.iter_directories()`` (object
stores: ``ObjectStoreBackend.iter_directories``, one paginated listing grouped by
directory; shared_fs: ``SharedFSBackend.iter_directories``). This module only keeps the
names scans import.
"""

from collections.abc import Iterator

from storage.backends.base import ListedDirectory, StorageBackend

__all__ = ["ListedDirectory", "iter_directories"]


def iter_directories(backend: StorageBackend) -> Iterator[ListedDirectory]:
    """Every top-level directory of ``backend``'s storage, sorted by name, streamed."""
    return backend.iter_directories()
