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


# --- storage reconciliation ---------------------------------------------------------------


class ScanItemKind(models.TextChoices):
    """What a scan found wrong with one checkpoint directory."""

    ORPHANED = "ORPHANED", "Orphaned"
    MISSING = "MISSING", "Missing"
    DRIFTED = "DRIFTED", "Drifted"


class ScanItemResolution(models.TextChoices):
    """What was done about a scan item (blank: nothing yet)."""

    OPEN = "", "Open"
    IMPORTED = "IMPORTED", "Imported"
    FILES_DELETED = "FILES_DELETED", "Files deleted"
    KEPT = "KEPT", "Kept (no longer an orphan)"
    DELETE_FAILED = "DELETE_FAILED", "Deletion failed"
    MARKED_DELETED = "MARKED_DELETED", "Marked deleted"
    RESYNCED = "RESYNCED", "Resources re-synced"


#: Resolutions an orphan may still be deleted from.
DELETABLE_RESOLUTIONS = (ScanItemResolution.OPEN, ScanItemResolution.DELETE_FAILED)
