"""The registry of storage backends, keyed by ``StorageConfig.type``.

``get_backend(config)`` is the one way to reach a config's files::

    backend = get_backend(experiment.storage)
    backend.list_files(checkpoint.uuid)
    backend.delete_checkpoints([str(c.uuid) for c in doomed])
"""

from storage.backends.azure import AzureBackend
from storage.backends.base import (
    DeleteResult,
    FileNotFoundInStorage,
    StorageBackend,
    StorageError,
    StoredFile,
    TransientStorageError,
)
from storage.backends.gcs import GCSBackend
from storage.backends.s3 import S3Backend
from storage.backends.shared_fs import SharedFSBackend
from storage.choices import StorageType

BACKENDS: dict[str, type[StorageBackend]] = {
    StorageType.SHARED_FS.value: SharedFSBackend,
    StorageType.S3.value: S3Backend,
    StorageType.GCS.value: GCSBackend,
    StorageType.AZURE.value: AzureBackend,
}

__all__ = [
    "BACKENDS",
    "DeleteResult",
    "FileNotFoundInStorage",
    "StorageBackend",
    "StorageError",
    "StoredFile",
    "TransientStorageError",
    "get_backend",
]


def get_backend(config) -> StorageBackend:
    """The backend for ``config`` (a StorageConfig); StorageError for an unknown type."""
    try:
        backend_class = BACKENDS[config.type]
    except KeyError:
        raise StorageError(f"unknown storage type {config.type!r}") from None
    return backend_class(config)
