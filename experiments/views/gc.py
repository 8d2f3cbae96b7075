"""The GC pages of an experiment: the policy form with its live preview, counts, run cards.

Only the owner or staff may apply a policy (``experiments.gc.runs.set_gc_policy``); the
preview is ``experiments.gc.preview`` (the API's, one function).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from ckptweb.lib.errors import Conflict
from ckptweb.lib.policy import POLICY_FIELDS
from experiments.charts import page_chart
from experiments.forms import GCPolicyForm
from experiments.gc.preview import gc_preview, policy_counts, preview_is_current
from experiments.gc.retention import Verdicts
from experiments.gc.runs import set_gc_policy
from experiments.models import Experiment, GCRun
from experiments.permissions import can_manage
from experiments.views.queries import (
    latest_run,
)


@login_required
@require_GET
def experiment_gc_counts(request, pk: int):
    """How many checkpoints the saved policy keeps and would delete: a fragment the
    experiment page loads after it renders (the whole retained set: ~100 ms at 1M)."""
    experiment = get_object_or_404(Experiment.objects.select_related("storage"), pk=pk)
    counts = policy_counts(experiment, experiment.gc_policy)  # storage: its default policy
    return render(request, "experiments/gc/counts.html", counts)


# --- GC policy -------------------------------------------------------------------------------


#: Ids of each list the GC page inlines (``data-*-ids`` for "Copy all"); a longer list is
#: fetched from the API's gc-preview only when copied, so a keystroke never ships 1M ids.
PAGE_ID_LIMIT = 1000


def _preview_context(experiment: Experiment, policy) -> dict:
    """What ``experiments/gc/preview.html`` shows for ``policy``: the preview and its chart.

    ``experiments.gc.preview.gc_preview`` (its first page of rows, as the API's, and at most
    ``PAGE_ID_LIMIT`` ids of each list) and the metric chart of the candidates with the
    same verdicts.
    """
    preview = gc_preview(experiment, policy, id_limit=PAGE_ID_LIMIT)
    return {
        "experiment": experiment,
        "preview": preview,
        "retained_csv": ",".join(map(str, preview.retained_ids)),
        "deleted_csv": ",".join(map(str, preview.deleted_ids)),
        "ids_url": reverse("experiment-gc-preview", args=[experiment.pk])
        + "?"
        + urlencode({**policy.as_dict(), "page_size": 1}),
        "chart": page_chart(experiment, Verdicts(experiment, policy, preview.kept), preview.count),
    }


@login_required
@require_http_methods(["GET", "POST"])
def experiment_gc(request, pk: int):
    """The GC policy form with its live preview; POST saves the policy and starts a run."""
    experiment = get_object_or_404(Experiment.objects.select_related("owner", "storage"), pk=pk)
    manage = can_manage(request.user, experiment)
    status = 200
    if request.method == "POST":
        if not manage:
            raise PermissionDenied("Only the owner or staff can change the GC policy.")
        form = GCPolicyForm(experiment, request.POST)
        status = 400
        shown = request.POST.get("preview_fingerprint")
        if form.is_valid() and shown and not preview_is_current(experiment, form.policy, shown):
            # Nothing saved: the page shows this policy's fresh preview to confirm again.
            messages.warning(
                request,
                "The checkpoints changed since the preview you confirmed; nothing was "
                "deleted. Review the updated preview, then apply again.",
            )
            query = urlencode(form.policy.as_dict())
            return redirect(reverse("experiments:gc", args=[experiment.pk]) + "?" + query)
        if form.is_valid():
            try:
                run = set_gc_policy(experiment, form.policy, user=request.user)
            except Conflict as exc:  # the experiment is being deleted
                form.add_error(None, exc.message)
                status = 409
            else:
                messages.success(
                    request,
                    f"Saved GC policy {form.policy} and started GC run #{run.pk}.",
                )
                return redirect("experiments:gc", pk=experiment.pk)
    elif any(name in request.GET for name in POLICY_FIELDS):
        form = GCPolicyForm(experiment, request.GET)
    else:
        form = GCPolicyForm(experiment, experiment.gc_policy.as_dict())
    policy = form.policy if form.is_valid() else experiment.gc_policy
    context = {
        "form": form,
        "can_manage": manage,
        "current_policy": experiment.gc_policy,
        "run": latest_run(experiment),
        **_preview_context(experiment, policy),
    }
    return render(request, "experiments/gc/experiment_gc.html", context, status=status)


@login_required
@require_GET
def experiment_gc_preview(request, pk: int):
    """The ``#gc-preview`` partial for the typed policy, or the inline error message.

    An invalid policy answers 200 with ``HX-Retarget: #gc-errors`` so htmx puts the message
    beside the form and leaves the previous preview untouched.
    """
    experiment = get_object_or_404(Experiment.objects.select_related("storage"), pk=pk)
    form = GCPolicyForm(experiment, request.GET)
    if not form.is_valid():
        response = render(request, "experiments/gc/errors.html", {"form": form})
        if request.htmx:
            response["HX-Retarget"] = "#gc-errors"
            response["HX-Reswap"] = "innerHTML"
        else:
            response.status_code = 400
        return response
    context = {"oob_errors": True, **_preview_context(experiment, form.policy)}
    return render(request, "experiments/gc/preview.html", context)


@login_required
@require_GET
def gc_run_card(request, pk: int):
    """The progress card of one GC run; polled every second until the run has finished.

    The answer that first reports the end carries ``HX-Trigger: gc-finished`` so the page
    refreshes the tables that depend on it.
    """
    run = get_object_or_404(GCRun.objects.select_related("experiment"), pk=pk)
    response = render(request, "experiments/gc/run.html", {"run": run})
    if request.htmx and (run.finished_at or run.is_finished):
        response["HX-Trigger"] = "gc-finished"
    return response
