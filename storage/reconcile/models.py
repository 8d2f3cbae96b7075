"""Scans of a storage against the database, their findings and orphan deletions.

The three models moved here from the storage app without touching their tables
(``db_table`` keeps the old names; migration ``0001_initial`` is state-only).
"""

from __future__ import annotations

from django.db import models

from ckptweb.jobs import Run
from storage.reconcile.choices import ScanItemKind, ScanItemResolution


class StorageScan(Run):
    """One comparison of what a storage holds with what the database says.

    Counters grow while the scan runs (the page shows them as progress); the classified
    directories are ScanItem rows. ``grace_seconds`` is the grace period the scan used: a
    directory written to more recently than that is never called orphaned.
    """

    storage = models.ForeignKey(
        "storage.StorageConfig", on_delete=models.CASCADE, related_name="scans"
    )
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grace_seconds = models.PositiveIntegerField(default=3600)
    directories = models.PositiveBigIntegerField(default=0, help_text="Directories listed.")
    objects_listed = models.PositiveBigIntegerField(default=0)
    bytes_listed = models.PositiveBigIntegerField(default=0)
    orphaned = models.PositiveIntegerField(default=0)
    orphaned_bytes = models.PositiveBigIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    missing_bytes = models.PositiveBigIntegerField(default=0)
    drifted = models.PositiveIntegerField(default=0)
    young = models.PositiveIntegerField(default=0, help_text="Unknown dirs inside the grace.")
    skipped = models.PositiveIntegerField(
        default=0, help_text="Directories that are not checkpoint UUIDs of this storage."
    )

    class Meta:
        db_table = "storage_storagescan"
        ordering = ["-id"]
        indexes = [models.Index(fields=["storage", "-id"], name="scan_storage_idx")]

    def __str__(self) -> str:
        return f"Scan {self.pk} of {self.storage_id}"

    def scrub(self, text: str) -> str:
        return self.storage.scrub(text)


class ScanItem(models.Model):
    """One directory (or checkpoint) a scan classified as orphaned, missing or drifted.

    ``details`` holds what the page shows: for orphans ``metadata`` (experiment/trial from
    metadata.json) and ``checkpoint_state`` (DELETED, or null for an unknown UUID); for
    drift ``changed`` ``[{path, recorded, actual}]``, ``missing`` and ``extra`` paths.
    """

    Kind = ScanItemKind
    Resolution = ScanItemResolution

    scan = models.ForeignKey(StorageScan, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=ScanItemKind.choices)
    uuid = models.UUIDField()
    checkpoint = models.ForeignKey(
        "experiments.Checkpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bytes = models.PositiveBigIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)
    newest_modified = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    resolution = models.CharField(
        max_length=16, choices=ScanItemResolution.choices, default="", blank=True
    )
    resolution_note = models.TextField(blank=True)
    deletion = models.ForeignKey(
        "OrphanDeletion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="items",
        help_text="The orphan deletion that claimed this item.",
    )

    class Meta:
        db_table = "storage_scanitem"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["scan", "kind", "id"], name="scanitem_kind_idx"),
            models.Index(fields=["scan", "uuid"], name="scanitem_uuid_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"


class OrphanDeletion(Run):
    """One run deleting the orphaned directories of a scan, with progress and errors.

    Each item is claimed with a compare-and-set and re-checked just before its files go:
    its UUID must still be unknown (or DELETED) and its directory still older than the
    grace period; otherwise it is kept (``skipped``). ``errors`` is a list of
    ``{"uuid": ..., "error": ...}``.
    """

    scan = models.ForeignKey(StorageScan, on_delete=models.CASCADE, related_name="deletions")
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    total = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    reclaimed_bytes = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "storage_orphandeletion"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Orphan deletion {self.pk} of scan {self.scan_id}"

    @property
    def processed(self) -> int:
        """Items decided so far (deleted, kept or failed), for the progress bar."""
        return self.deleted + self.failed + self.skipped

    def scrub(self, text: str) -> str:
        return self.scan.storage.scrub(text)
