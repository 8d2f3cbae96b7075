"""Staff pages of storage: each location and its usage, scans, findings and their actions.

Every view is staff only (403 otherwise) and calls ``storage.reconcile.actions``; deleting orphans
goes preview → confirmation → a Celery run whose progress card the page polls.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import BigIntegerField, Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ckptweb.lib.db import ByteSum
from experiments.choices import CheckpointState
from experiments.gc.record import attention_list, needs_attention
from experiments.models import Checkpoint, Experiment, Trial
from experiments.permissions import staff_required
from storage.models import StorageConfig
from storage.reconcile import actions, orphans
from storage.reconcile.choices import ScanItemKind
from storage.reconcile.models import OrphanDeletion, ScanItem, StorageScan

ITEMS_PER_PAGE = 50
KIND_CHOICES = ScanItemKind.choices


def _storage(storage_id: int) -> StorageConfig:
    return get_object_or_404(StorageConfig.objects.defer("access_key", "secret_key"), pk=storage_id)


def _scan(storage: StorageConfig, scan_id: int) -> StorageScan:
    return get_object_or_404(StorageScan, pk=scan_id, storage=storage)


def _item(scan: StorageScan, item_id: int) -> ScanItem:
    return get_object_or_404(
        ScanItem.objects.select_related("scan__storage", "deletion"), pk=item_id, scan=scan
    )


def filtered_items(scan: StorageScan, params):
    """The scan's items of one kind, filtered by ``status`` and a ``q`` UUID fragment."""
    kind = params.get("kind", ScanItemKind.ORPHANED).upper()
    if kind not in ScanItemKind.values:
        kind = ScanItemKind.ORPHANED
    items = scan.items.filter(kind=kind).order_by("-bytes", "id")
    status = params.get("status", "open")
    if status == "open":
        items = items.filter(resolution="")
    elif status == "resolved":
        items = items.exclude(resolution="")
    query = params.get("q", "").strip().lower()
    if query:
        items = items.filter(uuid__icontains=query.replace("-", ""))
    return kind, status, query, items.select_related("deletion")


# --- scans ----------------------------------------------------------------------------------


@staff_required
@require_GET
def scan_index(request, storage_id: int):
    """The storage's latest scan with its findings (or an invitation to run one)."""
    storage = _storage(storage_id)
    scan = actions.latest_scan(storage)
    return _render_scan(request, storage, scan)


@staff_required
@require_GET
def scan_detail(request, storage_id: int, scan_id: int):
    """One scan: summary, a table per class with filters, and the actions."""
    storage = _storage(storage_id)
    return _render_scan(request, storage, _scan(storage, scan_id))


def _render_scan(request, storage: StorageConfig, scan: StorageScan | None):
    context = {
        "storage": storage,
        "scan": scan,
        "history": storage.scans.order_by("-id")[:10],
    }
    if scan is not None:
        kind, status, query, items = filtered_items(scan, request.GET)
        open_counts = {
            row["kind"]: row["n"]
            for row in scan.items.filter(resolution="")
            .values("kind")
            .order_by()
            .annotate(n=Count("id"))
        }
        context.update(
            crumb=f"Scan #{scan.pk}",
            tabs=[(value, label, open_counts.get(value, 0)) for value, label in KIND_CHOICES],
            kind=kind,
            status=status,
            q=query,
            page=Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page")),
            open_counts=open_counts,
            deletion=scan.deletions.order_by("-id").first(),
        )
    return render(request, "reconcile/scan.html", context)


@staff_required
@require_POST
def scan_start(request, storage_id: int):
    """Start a scan (or show the one already running)."""
    storage = _storage(storage_id)
    scan, created = actions.start_scan(storage, request.user)
    if not created:
        messages.info(request, f"Scan #{scan.pk} is already {scan.state.lower()}.")
    return redirect("storage_scans:detail", storage.pk, scan.pk)


@staff_required
@require_GET
def scan_card(request, storage_id: int, scan_id: int):
    """The scan's progress card; polled until the scan has ended, then reloads the page."""
    storage = _storage(storage_id)
    return _card(request, "reconcile/scan_card.html", _scan(storage, scan_id), storage)


def _card(request, template: str, run, storage: StorageConfig):
    """A run's progress card; once the run has ended, htmx is told to reload the page."""
    response = render(request, template, {"run": run, "storage": storage})
    if getattr(request, "htmx", False) and run.is_finished:
        response["HX-Refresh"] = "true"
    return response


# --- deleting orphans -----------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def delete_orphans(request, storage_id: int, scan_id: int):
    """GET: what would be deleted and how many bytes; POST (the confirmation): start it."""
    storage = _storage(storage_id)
    scan = _scan(storage, scan_id)
    if request.method == "POST":
        try:
            deletion = actions.start_deletion(scan, request.user)
        except actions.ActionRefused as exc:
            messages.error(request, str(exc))
            return redirect("storage_scans:detail", storage.pk, scan.pk)
        return redirect("storage_scans:deletion", storage.pk, deletion.pk)
    preview = orphans.deletion_preview(scan)
    return render(
        request,
        "reconcile/delete_preview.html",
        {"storage": storage, "scan": scan, "preview": preview},
    )


def _deletion(storage: StorageConfig, deletion_id: int) -> OrphanDeletion:
    return get_object_or_404(
        OrphanDeletion.objects.select_related("scan"), pk=deletion_id, scan__storage=storage
    )


@staff_required
@require_GET
def deletion_detail(request, storage_id: int, deletion_id: int):
    """Progress and per-item errors of one orphan deletion."""
    storage = _storage(storage_id)
    deletion = _deletion(storage, deletion_id)
    items = deletion.items.order_by("id")
    return render(
        request,
        "reconcile/deletion.html",
        {
            "storage": storage,
            "deletion": deletion,
            "scan": deletion.scan,
            "page": Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page")),
        },
    )


@staff_required
@require_GET
def deletion_card(request, storage_id: int, deletion_id: int):
    """The deletion's progress card, polled every second until it has ended."""
    storage = _storage(storage_id)
    deletion = _deletion(storage, deletion_id)
    return _card(request, "reconcile/deletion_card.html", deletion, storage)


# --- actions on items -----------------------------------------------------------------------


class ImportForm(forms.Form):
    """Where an imported orphan goes: an experiment on this storage and, optionally, a trial."""

    experiment = forms.ModelChoiceField(queryset=Experiment.objects.none())
    trial = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="Used when metadata.json names no trial_id; empty: an 'imported' trial.",
    )

    def __init__(self, *args, storage: StorageConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["experiment"].queryset = Experiment.objects.filter(storage=storage).order_by(
            "-id"
        )

    def clean(self):
        cleaned = super().clean()
        experiment, trial_id = cleaned.get("experiment"), cleaned.get("trial")
        if experiment is not None and trial_id is not None:
            trial = Trial.objects.filter(pk=trial_id, experiment=experiment).first()
            if trial is None:
                self.add_error("trial", f"Trial {trial_id} is not a trial of this experiment.")
            cleaned["trial_obj"] = trial
        return cleaned


@staff_required
@require_http_methods(["GET", "POST"])
def item_import(request, storage_id: int, scan_id: int, item_id: int):
    """Register an orphan as a checkpoint; experiment and trial default to metadata.json's."""
    storage = _storage(storage_id)
    scan = _scan(storage, scan_id)
    item = _item(scan, item_id)
    metadata = item.details.get("metadata") or {}
    initial = {"experiment": metadata.get("experiment_id"), "trial": metadata.get("trial_id")}
    form = ImportForm(request.POST or None, storage=storage, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            checkpoint = actions.import_orphan(
                item, form.cleaned_data["experiment"], form.cleaned_data.get("trial_obj")
            )
        except actions.ActionRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Imported checkpoint {checkpoint.uuid}.")
            return redirect("storage_scans:detail", storage.pk, scan.pk)
    return render(
        request,
        "reconcile/import.html",
        {"storage": storage, "scan": scan, "item": item, "form": form, "metadata": metadata},
        status=400 if form.errors else 200,
    )


def _item_action(request, storage_id, scan_id, item_id, action, done: str):
    storage = _storage(storage_id)
    scan = _scan(storage, scan_id)
    item = _item(scan, item_id)
    try:
        action(item)
    except actions.ActionRefused as exc:
        messages.error(request, f"{item.uuid}: {exc}")
    else:
        messages.success(request, f"{item.uuid}: {done}.")
    return redirect(
        f"{_detail_url(storage, scan)}?kind={item.kind}&status={request.POST.get('status', 'open')}"
    )


def _detail_url(storage, scan) -> str:
    return reverse("storage_scans:detail", args=[storage.pk, scan.pk])


@staff_required
@require_POST
def item_mark_deleted(request, storage_id: int, scan_id: int, item_id: int):
    """Mark a missing checkpoint DELETED (after checking again that its files are gone)."""
    return _item_action(
        request, storage_id, scan_id, item_id, actions.mark_missing_deleted, "marked DELETED"
    )


@staff_required
@require_POST
def item_resync(request, storage_id: int, scan_id: int, item_id: int):
    """Replace a drifted checkpoint's recorded resources with what storage holds."""
    return _item_action(
        request, storage_id, scan_id, item_id, actions.resync_resources, "resources re-synced"
    )


@staff_required
@require_POST
def mark_all_missing(request, storage_id: int, scan_id: int):
    """Mark every open missing checkpoint of the scan DELETED."""
    storage = _storage(storage_id)
    scan = _scan(storage, scan_id)
    done, refusals = actions.mark_all_missing_deleted(scan)
    messages.success(request, f"{done} missing checkpoint(s) marked DELETED.")
    for refusal in refusals[:10]:
        messages.error(request, refusal)
    return redirect(f"{_detail_url(storage, scan)}?kind=MISSING")


# --- the storage page: every location and its usage ----------------------------------------

EXPERIMENTS_LISTED = 20
#: Checkpoints that need attention listed on the storage page (the count is whole).
ATTENTION_SHOWN = 50


def _per_storage(aggregate, output_field, *conditions):
    """``aggregate`` over the live checkpoints of the outer storage's experiments (those
    meeting ``conditions``)."""
    rows = (
        Checkpoint.objects.filter(*conditions, experiment__storage=OuterRef("pk"))
        .exclude(state=CheckpointState.DELETED)
        .order_by()
        .values("experiment__storage")
        .annotate(v=aggregate)
        .values("v")[:1]
    )
    return Coalesce(Subquery(rows, output_field=output_field), 0)


def storage_rows():
    """Storage configs with experiment counts, live checkpoints and bytes, and how many of
    their checkpoints need attention (secrets excluded)."""
    return (
        StorageConfig.objects.defer("access_key", "secret_key")
        .annotate(
            n_experiments=Count("experiments", distinct=True),
            n_live=_per_storage(Count("id"), IntegerField()),
            live_bytes=_per_storage(ByteSum("size_bytes"), BigIntegerField()),
            n_attention=_per_storage(Count("id"), IntegerField(), needs_attention()),
        )
        .prefetch_related(
            Prefetch(
                "experiments",
                queryset=Experiment.objects.only("id", "name", "state", "storage_id").order_by(
                    "-id"
                ),
                to_attr="experiment_list",
            )
        )
        .order_by("-is_default", "name")
    )


@staff_required
@require_GET
def storage_list(request):
    """Every StorageConfig with its location and usage: the index of the scans; staff only."""
    storages = list(storage_rows())
    for storage in storages:
        storage.experiments_shown = storage.experiment_list[:EXPERIMENTS_LISTED]
    attention, attention_count = attention_list(Checkpoint.objects.all(), ATTENTION_SHOWN)
    return render(
        request,
        "reconcile/storage_list.html",
        {
            "heading": "Storage",
            "storages": storages,
            "experiments_listed": EXPERIMENTS_LISTED,
            "attention": attention,
            "attention_count": attention_count,
        },
    )
