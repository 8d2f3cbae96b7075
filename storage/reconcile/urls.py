"""Storage pages: the storage list (namespace ``storage``) and reconciliation (``storage_scans``).

The list keeps its URL name ``storage:list`` through ``storage_urlpatterns``, which
``ckptweb.urls`` includes under its own namespace; the scans live under /storage/<id>/scans/.
"""

from django.urls import path

from storage.reconcile import views

app_name = "storage_scans"

#: ``storage:list``, the staff storage page (the scans' index).
storage_urlpatterns = ([path("storage/", views.storage_list, name="list")], "storage")

urlpatterns = [
    path("storage/<int:storage_id>/scans/", views.scan_index, name="index"),
    path("storage/<int:storage_id>/scans/start/", views.scan_start, name="start"),
    path("storage/<int:storage_id>/scans/<int:scan_id>/", views.scan_detail, name="detail"),
    path("storage/<int:storage_id>/scans/<int:scan_id>/card/", views.scan_card, name="card"),
    path(
        "storage/<int:storage_id>/scans/<int:scan_id>/delete-orphans/",
        views.delete_orphans,
        name="delete-orphans",
    ),
    path(
        "storage/<int:storage_id>/scans/<int:scan_id>/mark-missing-deleted/",
        views.mark_all_missing,
        name="mark-missing-deleted",
    ),
    path(
        "storage/<int:storage_id>/scans/<int:scan_id>/items/<int:item_id>/import/",
        views.item_import,
        name="item-import",
    ),
    path(
        "storage/<int:storage_id>/scans/<int:scan_id>/items/<int:item_id>/mark-deleted/",
        views.item_mark_deleted,
        name="item-mark-deleted",
    ),
    path(
        "storage/<int:storage_id>/scans/<int:scan_id>/items/<int:item_id>/resync/",
        views.item_resync,
        name="item-resync",
    ),
    path(
        "storage/<int:storage_id>/scans/deletions/<int:deletion_id>/",
        views.deletion_detail,
        name="deletion",
    ),
    path(
        "storage/<int:storage_id>/scans/deletions/<int:deletion_id>/card/",
        views.deletion_card,
        name="deletion-card",
    ),
]
