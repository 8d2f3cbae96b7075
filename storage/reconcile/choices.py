"""Enumerations of storage reconciliation: what a scan found, and what was done about it."""

from django.db import models


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
