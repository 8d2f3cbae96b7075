"""Enumerations of the storage app.

Which StorageConfig fields each type uses (required, secret, URLs) is declared by the
type's backend class (``storage.backends``), not here.
"""

from django.db import models


class StorageType(models.TextChoices):
    """The kinds of checkpoint storage of the spec's ``checkpoint_storage`` section."""

    SHARED_FS = "shared_fs", "Shared file system"
    S3 = "s3", "Amazon S3 (or compatible)"
    GCS = "gcs", "Google Cloud Storage"
    AZURE = "azure", "Azure Blob Storage"
