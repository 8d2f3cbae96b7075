"""Storage reconciliation REST routes (mounted under /api/v1/); staff only."""

from django.urls import path

from storage.reconcile import api as views

urlpatterns = [
    path("storage/<str:storage>/scans", views.StorageScanListView.as_view(), name="storage-scans"),
    path("storage-scans/<int:pk>", views.ScanDetailView.as_view(), name="storage-scan-detail"),
    path(
        "storage-scans/<int:pk>/items", views.ScanItemListView.as_view(), name="storage-scan-items"
    ),
    path(
        "storage-scans/<int:pk>/delete-orphans",
        views.DeleteOrphansView.as_view(),
        name="storage-scan-delete-orphans",
    ),
    path(
        "orphan-deletions/<int:pk>",
        views.DeletionDetailView.as_view(),
        name="orphan-deletion-detail",
    ),
]
