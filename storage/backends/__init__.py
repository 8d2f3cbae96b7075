"""The registry of storage backends, keyed by ``StorageConfig.type``.

``get_backend(config)`` is the one way to reach a config's files::

    backend = get_backend(experiment.storage)
    backend.list_files(checkpoint.uuid)
    backend.delete_checkpoints([str(c.uuid) for c in doomed])

Each backend class declares its type's fields (``parameters`` and which are required,
secret or URLs); ``STORAGE_FIELDS``, ``SECRET_FIELDS`` and ``URL_FIELDS`` are their union,
for the code that handles a StorageConfig of any type (forms, redaction, config parsing).
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

BACKENDS: dict[str, type[StorageBackend]] = {
    backend.storage_type.value: backend
    for backend in (SharedFSBackend, S3Backend, GCSBackend, AzureBackend)
}


def _union(attribute: str) -> tuple[str, ...]:
    """The fields named by ``attribute`` on any backend, in declaration order, once each."""
    names = (name for backend in BACKENDS.values() for name in getattr(backend, attribute))
    return tuple(dict.fromkeys(names))


#: Every location field of StorageConfig, of whichever type.
STORAGE_FIELDS = _union("parameters")
#: Write-only fields: never rendered, returned, logged or quoted in an error.
SECRET_FIELDS = _union("sensitive_parameters")
#: URL fields whose credentials (userinfo, a SAS query) count as secrets.
URL_FIELDS = _union("url_parameters")

__all__ = [
    "BACKENDS",
    "SECRET_FIELDS",
    "STORAGE_FIELDS",
    "URL_FIELDS",
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
