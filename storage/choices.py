"""Enumerations of the storage app."""

from django.db import models


class StorageType(models.TextChoices):
    """The kinds of checkpoint storage of the spec's ``checkpoint_storage`` section."""

    SHARED_FS = "shared_fs", "Shared file system"
    S3 = "s3", "Amazon S3 (or compatible)"
    GCS = "gcs", "Google Cloud Storage"


# Fields each type needs and may have; the rest must stay blank.
REQUIRED_FIELDS = {
    StorageType.SHARED_FS: ("host_path",),
    StorageType.S3: ("bucket",),
    StorageType.GCS: ("bucket",),
}
ALLOWED_FIELDS = {
    StorageType.SHARED_FS: ("host_path", "storage_path"),
    StorageType.S3: ("bucket", "prefix", "endpoint_url", "access_key", "secret_key"),
    StorageType.GCS: ("bucket", "prefix"),
}
SECRET_FIELDS = ("access_key", "secret_key")
