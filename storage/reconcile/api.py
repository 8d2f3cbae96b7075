"""REST API of storage reconciliation (staff only): scans, their items, orphan deletions.

Thin: each view loads its object and calls ``storage.reconcile.actions``. Scans and deletions run
in Celery; the POSTs answer 202 with the row, whose state and counters show progress.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.permissions import IsStaff
from storage.models import StorageConfig
from storage.reconcile import actions, orphans, scan
from storage.reconcile.choices import ScanItemKind
from storage.reconcile.models import OrphanDeletion, ScanItem, StorageScan


class StaffOnly(IsStaff):
    """Staff only: storage reconciliation sees and deletes every checkpoint's files."""

    message = "Only staff may scan storage and delete orphaned files."


# --- serializers ----------------------------------------------------------------------------


class ScanSerializer(serializers.ModelSerializer):
    """A scan with its progress counters (``finished_at`` is null until it has ended)."""

    storage_name = serializers.CharField(source="storage.name", read_only=True)

    class Meta:
        model = StorageScan
        fields = [
            "id",
            "storage",
            "storage_name",
            "state",
            "grace_seconds",
            *scan.COUNTERS,
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class ScanItemSerializer(serializers.ModelSerializer):
    """One orphaned, missing or drifted directory of a scan, and what was done about it."""

    checkpoint_id = serializers.IntegerField(read_only=True, allow_null=True)
    deletion_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ScanItem
        fields = [
            "id",
            "kind",
            "uuid",
            "checkpoint_id",
            "bytes",
            "file_count",
            "newest_modified",
            "details",
            "resolution",
            "resolution_note",
            "deletion_id",
        ]
        read_only_fields = fields


class DeletionSerializer(serializers.ModelSerializer):
    """An orphan deletion: progress, reclaimed bytes and per-item errors."""

    scan_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = OrphanDeletion
        fields = [
            "id",
            "scan_id",
            "state",
            "total",
            "deleted",
            "failed",
            "skipped",
            "reclaimed_bytes",
            "errors",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class DeletionPreviewSerializer(serializers.Serializer):
    """What a deletion would remove now."""

    scan_id = serializers.IntegerField()
    count = serializers.IntegerField()
    bytes = serializers.IntegerField()
    grace_seconds = serializers.IntegerField()
    items = ScanItemSerializer(many=True)


# --- views ----------------------------------------------------------------------------------


def storage_by_reference(reference: str) -> StorageConfig:
    """A storage by id (all digits) or by name; 404 when there is none."""
    if reference.isdigit():
        return get_object_or_404(StorageConfig, pk=int(reference))
    return get_object_or_404(StorageConfig, name=reference)


class StorageScanListView(APIView):
    """``GET`` a storage's scans, newest first; ``POST`` starts one (202).

    The storage is named by id or by name. POST answers with the active scan when one is
    already pending or running.
    """

    permission_classes = [StaffOnly]

    @extend_schema(
        responses=ScanSerializer(many=True),
        parameters=[OpenApiParameter("state", str, description="only scans in this state")],
    )
    def get(self, request, storage: str):
        config = storage_by_reference(storage)
        scans = config.scans.select_related("storage").order_by("-id")
        if request.query_params.get("state"):
            scans = scans.filter(state=request.query_params["state"].upper())
        return Response(ScanSerializer(scans[:50], many=True).data)

    @extend_schema(request=None, responses={202: ScanSerializer})
    def post(self, request, storage: str):
        config = storage_by_reference(storage)
        scan, created = actions.start_scan(config, request.user)
        scan.refresh_from_db()
        return Response(
            {**ScanSerializer(scan).data, "created": created}, status=status.HTTP_202_ACCEPTED
        )


class ScanDetailView(generics.RetrieveAPIView):
    """One scan and its progress."""

    permission_classes = [StaffOnly]
    serializer_class = ScanSerializer

    def get_queryset(self):
        return StorageScan.objects.select_related("storage").order_by("-id")


class ScanItemListView(generics.ListAPIView):
    """A scan's items, paginated, filtered by ``?kind=`` and ``?resolution=``."""

    permission_classes = [StaffOnly]
    serializer_class = ScanItemSerializer
    filter_backends: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=ScanItemKind.values),
            OpenApiParameter("resolution", str, description="OPEN for unresolved items"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        scan = get_object_or_404(StorageScan, pk=self.kwargs["pk"])
        items = scan.items.order_by("id")
        kind = self.request.query_params.get("kind")
        if kind:
            if kind.upper() not in ScanItemKind.values:
                allowed = ", ".join(ScanItemKind.values)
                raise ValidationError({"kind": [f"{kind!r} is not one of {allowed}."]})
            items = items.filter(kind=kind.upper())
        resolution = self.request.query_params.get("resolution")
        if resolution:
            items = items.filter(resolution="" if resolution.upper() == "OPEN" else resolution)
        return items


class DeleteOrphansView(APIView):
    """``GET`` previews what deleting the scan's orphans would remove; ``POST`` starts it."""

    permission_classes = [StaffOnly]

    @extend_schema(responses=DeletionPreviewSerializer)
    def get(self, request, pk: int):
        scan = get_object_or_404(StorageScan, pk=pk)
        preview = orphans.deletion_preview(scan)
        return Response(DeletionPreviewSerializer({**preview, "scan_id": scan.pk}).data)

    @extend_schema(request=None, responses={202: DeletionSerializer})
    def post(self, request, pk: int):
        scan = get_object_or_404(StorageScan, pk=pk)
        deletion = actions.start_deletion(scan, request.user)
        deletion.refresh_from_db()
        return Response(DeletionSerializer(deletion).data, status=status.HTTP_202_ACCEPTED)


class DeletionDetailView(generics.RetrieveAPIView):
    """One orphan deletion and its progress."""

    permission_classes = [StaffOnly]
    serializer_class = DeletionSerializer

    def get_queryset(self):
        return OrphanDeletion.objects.order_by("-id")
