"""Checkpoint pages: a checkpoint with its files, protection, and "Delete files".

The files are listed a page at a time (``experiments.views.checkpoint_files``): ``?page=``
and ``?q=`` pick the page and filter the paths; an unusable one is a 400 that still shows
the checkpoint, with the first page of its files and the reason.

``checkpoint_protect`` calls ``services.update_checkpoint`` (refused while the experiment
is being deleted or a GC run holds the checkpoint). Partial deletion, the "Delete files"
action: ``checkpoint_rm_preview`` (GET, htmx) renders ``#rm-preview``: how many files the
typed globs match and their bytes, the first ``RM_PREVIEW_FILES`` of them by path, or the
glob error; ``checkpoint_rm`` (POST) calls ``experiments.gc.files.delete_files`` and
redirects to the checkpoint page with the outcome as a message. Both only translate: the
service owns every rule.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ckptweb.lib.errors import Conflict
from experiments import services
from experiments.choices import GC_CANDIDATE_STATES
from experiments.gc import files
from experiments.gc.globs import GlobError, check_globs, matching_files
from experiments.gc.retention import retained
from experiments.models import Checkpoint
from experiments.permissions import can_manage
from experiments.views import registry
from experiments.views.checkpoint_files import (
    FilesPageError,
    checkpoint_file_page,
    download_links,
    file_filter,
    listed_files,
    model_format_and_snippet,
    page_number,
)
from experiments.views.queries import verdict

#: Matching files the "Delete files" preview names (the count and bytes are of all of them).
RM_PREVIEW_FILES = 200


@login_required
@require_GET
def checkpoint_detail(request, uuid):
    """One checkpoint: metadata, metrics, files with downloads, format and a load snippet."""
    checkpoint = get_object_or_404(
        Checkpoint.objects.select_related("trial", "experiment__owner", "experiment__storage"),
        uuid=uuid,
    )
    experiment = checkpoint.experiment
    validation = services.latest_validation(checkpoint)
    keep = None
    if checkpoint.state in GC_CANDIDATE_STATES:
        kept = retained(experiment, experiment.gc_policy, trials=[checkpoint.trial_id])
        keep = verdict(checkpoint, kept)
    listed = listed_files(checkpoint)
    problem, status = None, 200
    try:
        number, query = page_number(request.GET.get("page")), file_filter(request.GET.get("q"))
    except FilesPageError as exc:
        (number, query), problem, status = (1, ""), str(exc), 400
    files = checkpoint_file_page(checkpoint, listed, number, query)
    download = download_links(checkpoint)
    model_format, snippet = model_format_and_snippet(
        checkpoint, listed, download, request.build_absolute_uri
    )
    return render(
        request,
        "experiments/checkpoints/checkpoint_detail.html",
        {
            "checkpoint": checkpoint,
            "experiment": experiment,
            "trial": checkpoint.trial,
            "validation": validation,
            "metrics": sorted(validation.metrics.items()) if validation else [],
            "keep": keep,
            "can_manage": can_manage(request.user, experiment),
            "files": files,
            "files_problem": problem,
            "download": download,
            "format": model_format,
            "snippet": snippet,
            "metadata": sorted(checkpoint.metadata.items()) if checkpoint.metadata else [],
            **registry.checkpoint_registry_context(request, checkpoint),
        },
        status=status,
    )


@login_required
@require_POST
def checkpoint_protect(request, uuid):
    """Protect (never garbage-collect) or unprotect a checkpoint; owner or staff only."""
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("experiment"), uuid=uuid)
    if not can_manage(request.user, checkpoint.experiment):
        raise PermissionDenied("Only the owner or staff can protect checkpoints.")
    protected = request.POST.get("protected") == "1"
    try:
        services.update_checkpoint(checkpoint, protected=protected)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect(reverse("experiments:checkpoint", args=[checkpoint.uuid]))
    messages.success(
        request,
        "Checkpoint protected: garbage collection will keep it."
        if protected
        else "Checkpoint unprotected: the GC policy decides whether it is kept.",
    )
    return redirect(reverse("experiments:checkpoint", args=[checkpoint.uuid]))


# --- deleting files ------------------------------------------------------------------------


def globs_from(data) -> list[str]:
    """The globs of the form: one per line of ``globs`` (blank lines ignored)."""
    return [line.strip() for line in data.get("globs", "").splitlines() if line.strip()]


def _managed_checkpoint(request, uuid) -> Checkpoint:
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("experiment"), uuid=uuid)
    if not can_manage(request.user, checkpoint.experiment):
        raise PermissionDenied("Only the owner or staff can delete a checkpoint's files.")
    return checkpoint


@login_required
@require_GET
def checkpoint_rm_preview(request, uuid):
    """``#rm-preview``: the files and bytes the typed globs would delete."""
    checkpoint = _managed_checkpoint(request, uuid)
    context = {"checkpoint": checkpoint, "error": None, "count": 0, "total": 0, "shown": []}
    try:
        globs = check_globs(globs_from(request.GET))
    except GlobError as exc:
        context["error"] = str(exc)
    else:
        matches = matching_files(checkpoint.resources, globs)
        context.update(
            count=len(matches),
            total=sum(matches.values()),
            shown=sorted(matches.items())[:RM_PREVIEW_FILES],
            more=max(len(matches) - RM_PREVIEW_FILES, 0),
        )
    return render(request, "experiments/checkpoints/rm_preview.html", context)


@login_required
@require_POST
def checkpoint_rm(request, uuid):
    """Start deleting the matching files; back to the checkpoint page with the outcome."""
    checkpoint = _managed_checkpoint(request, uuid)
    try:
        run = files.delete_files(checkpoint, globs_from(request.POST))
    except (GlobError, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        run.refresh_from_db()
        messages.success(request, f"Deleting files: GC run {run.pk} is {run.state}.")
    return redirect(reverse("experiments:checkpoint", args=[checkpoint.uuid]))
