"""Pages of partial deletion: the "Delete files" action of the checkpoint page.

``checkpoint_rm_preview`` (GET, htmx) renders ``#rm-preview``: the files the typed globs
match and their bytes, or the glob error; ``checkpoint_rm`` (POST) calls
``experiments.gc.files.delete_files`` and redirects to the checkpoint page with the
outcome as a message. Both only translate: the service owns every rule.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ckptweb.lib.errors import Conflict
from experiments.gc import files
from experiments.models import Checkpoint
from experiments.permissions import can_manage


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
    context = {"checkpoint": checkpoint, "error": None, "matches": {}, "total": 0}
    try:
        globs = files.check_globs(globs_from(request.GET))
    except files.GlobError as exc:
        context["error"] = str(exc)
    else:
        matches = files.matching_files(checkpoint.resources, globs)
        context.update(matches=matches, total=sum(matches.values()))
    return render(request, "partials/rm_preview.html", context)


@login_required
@require_POST
def checkpoint_rm(request, uuid):
    """Start deleting the matching files; back to the checkpoint page with the outcome."""
    checkpoint = _managed_checkpoint(request, uuid)
    try:
        run = files.delete_files(checkpoint, globs_from(request.POST))
    except (files.GlobError, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        run.refresh_from_db()
        messages.success(request, f"Deleting files: GC run {run.pk} is {run.state}.")
    return redirect(reverse("experiments:checkpoint", args=[checkpoint.uuid]))
