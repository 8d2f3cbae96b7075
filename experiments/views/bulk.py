"""Actions on a selection of checkpoints from a checkpoint table.

The tables' checkboxes post ``checkpoints`` (uuids, at most ``MAX_SELECTED``) and an
``action``: ``compare`` redirects to the compare page, ``download`` streams one zip with a
folder per checkpoint (``experiments.downloads``), ``protect``/``unprotect`` flip the flag in one
UPDATE, and ``delete`` first answers a confirmation page that names the checkpoints and the
bytes they free; only its ``confirm=1`` post starts the deletions (one GC run per checkpoint,
``runs.delete_checkpoint``, so each is retried and recorded like a single deletion).
Changes need the owner or staff for every selected checkpoint's experiment; any other
problem is a message on the page the user came from, never a 500.
"""

from __future__ import annotations

import uuid as uuid_lib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from ckptweb.lib.db import ByteSum
from ckptweb.lib.errors import Conflict
from ckptweb.lib.units import human_bytes
from experiments import registry, services
from experiments.choices import GONE_STATES
from experiments.downloads import foldered_archive, safe_name
from experiments.gc.runs import CheckpointProtected, delete_checkpoint
from experiments.models import Checkpoint
from experiments.permissions import can_manage
from experiments.views.compare import MAX_COMPARED, MIN_COMPARED
from storage.archive import FORMATS
from storage.backends.base import StorageError

MAX_SELECTED = 100
ACTIONS = ("compare", "download", "protect", "unprotect", "delete")


class SelectionError(ValueError):
    """The selection cannot be acted on; the message says why."""


def selected_checkpoints(values: list[str]) -> list[Checkpoint]:
    """The checkpoints of the posted uuids, in table order (newest first)."""
    if not values:
        raise SelectionError("Select at least one checkpoint first.")
    if len(values) > MAX_SELECTED:
        raise SelectionError(f"checkpoints: select at most {MAX_SELECTED} checkpoints.")
    try:
        uuids = {uuid_lib.UUID(v) for v in values}
    except ValueError:
        raise SelectionError("checkpoints: a selected value is not a checkpoint UUID.") from None
    found = list(
        Checkpoint.objects.filter(uuid__in=uuids)
        .select_related("experiment", "trial")
        .order_by("-id")
    )
    if len(found) != len(uuids):
        raise SelectionError("checkpoints: some selected checkpoints no longer exist.")
    return found


def delete_many(checkpoints: list[Checkpoint], user=None) -> tuple[int, list[str]]:
    """Start a deletion run for each live, unprotected checkpoint; (started, skipped notes)."""
    started, skipped = 0, []
    with transaction.atomic():
        for checkpoint in checkpoints:
            if checkpoint.state in GONE_STATES:
                skipped.append(f"{str(checkpoint.uuid)[:8]} is already {checkpoint.state.lower()}")
                continue
            try:
                delete_checkpoint(checkpoint, user=user)
            except CheckpointProtected as exc:  # protected, or registered (the message says)
                skipped.append(f"{str(checkpoint.uuid)[:8]}: {exc.message}")
                continue
            except Conflict as exc:  # its experiment is being deleted
                skipped.append(f"{str(checkpoint.uuid)[:8]}: {exc.message}")
                continue
            started += 1
    return started, skipped


def _next(request) -> str:
    """The page to go back to: ``next`` when it is this site's, else the experiments list."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return "/"
    return target or "/"


def _back(request):
    return redirect(_next(request))


def _require_manage(request, checkpoints: list[Checkpoint]) -> None:
    if not all(can_manage(request.user, c.experiment) for c in checkpoints):
        raise PermissionDenied("Only the owner or staff can change these checkpoints.")


def _download(checkpoints: list[Checkpoint]) -> StreamingHttpResponse:
    gone = [str(c.uuid)[:8] for c in checkpoints if c.state in GONE_STATES]
    if gone:
        raise SelectionError(f"Deleted checkpoints have no files to download: {', '.join(gone)}.")
    try:
        archive = foldered_archive(checkpoints)
    except StorageError as exc:
        raise SelectionError(f"Could not read the files on storage ({exc}).") from None
    response = StreamingHttpResponse(archive.stream("zip"), content_type=FORMATS["zip"].media_type)
    name = f"checkpoints-{len(checkpoints)}"
    if len({c.experiment_id for c in checkpoints}) == 1:
        name = f"{safe_name(checkpoints[0].experiment.name)}-{len(checkpoints)}-checkpoints"
    response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    response["Accept-Ranges"] = "none"
    return response


@login_required
@require_POST
def bulk_action(request):
    """Apply ``action`` to the selected ``checkpoints`` (see the module docstring)."""
    action = request.POST.get("action", "")
    try:
        if action not in ACTIONS:
            raise SelectionError(f"action: choose one of {', '.join(ACTIONS)}.")
        checkpoints = selected_checkpoints(request.POST.getlist("checkpoints"))
        if action == "compare":
            if not MIN_COMPARED <= len(checkpoints) <= MAX_COMPARED:
                raise SelectionError(
                    f"Select {MIN_COMPARED} to {MAX_COMPARED} checkpoints to compare "
                    f"({len(checkpoints)} selected)."
                )
            uuids = ",".join(str(c.uuid) for c in reversed(checkpoints))
            return redirect(f"{reverse('experiments:compare')}?{urlencode({'checkpoints': uuids})}")
        if action == "download":
            return _download(checkpoints)
        _require_manage(request, checkpoints)
        if action in ("protect", "unprotect"):
            changed, refused = services.set_protected(checkpoints, action == "protect")
            messages.success(request, f"{action.capitalize()}ed {changed} checkpoint(s).")
            if refused:
                messages.error(request, "Refused: " + "; ".join(refused[:10]))
            return _back(request)
        if request.POST.get("confirm") != "1":
            # What the deletion will take: not gone, not protected, not pinned by a version.
            registered = registry.registered_versions(c.pk for c in checkpoints)
            for checkpoint in checkpoints:
                checkpoint.registered_as = registered.get(checkpoint.pk, [])
            live = [
                c
                for c in checkpoints
                if c.state not in GONE_STATES and not c.protected and not c.registered_as
            ]
            total = Checkpoint.objects.filter(pk__in=[c.pk for c in live]).aggregate(
                b=ByteSum("size_bytes")
            )["b"]
            return render(
                request,
                "experiments/checkpoints/bulk_delete_confirm.html",
                {
                    "checkpoints": checkpoints,
                    "live": live,
                    "bytes": total or 0,
                    "bytes_human": human_bytes(total or 0),
                    "next": _next(request),
                },
            )
        started, skipped = delete_many(checkpoints, request.user)
        text = f"Deleting {started} checkpoint(s)."
        if skipped:
            text += " Skipped: " + "; ".join(skipped[:10]) + "."
        messages.success(request, text)
    except SelectionError as exc:
        messages.error(request, str(exc))
    return _back(request)
