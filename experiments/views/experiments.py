"""Dashboard pages of experiments, trials, checkpoints and GC policies.

Every page needs a signed-in user; anyone signed in may look, only the experiment's owner
or staff may change anything (apply a GC policy, protect a checkpoint). Views stay thin:
the queries are ``experiments.views.queries`` (counts do not grow with the number of
checkpoints), the files, downloads and snippets ``experiments.views.checkpoint_files``, the GC
preview ``experiments.gc.preview`` (the API's, one function) and the charts a sample of bounded
size chosen by the database (``experiments.charts.svg``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ckptweb.jobs import RUN_TERMINAL_STATES
from ckptweb.lib.errors import Conflict
from ckptweb.lib.policy import POLICY_FIELDS
from experiments import services
from experiments.charts.options import page_chart
from experiments.choices import GC_CANDIDATE_STATES
from experiments.forms import ExperimentFilterForm, GCPolicyForm
from experiments.gc.preview import gc_preview, policy_counts, preview_is_current
from experiments.gc.retention import Verdicts, retained
from experiments.gc.runs import set_gc_policy
from experiments.models import Checkpoint, Experiment, GCRun, Trial
from experiments.permissions import can_manage
from experiments.registry import mark_registered
from experiments.views import registry
from experiments.views.checkpoint_files import (
    best_download,
    checkpoint_file_rows,
    download_links,
    model_format_and_snippet,
)
from experiments.views.queries import (
    checkpoint_validation,
    experiment_rows,
    experiment_summary,
    experiments_with_trial_count,
    latest_run,
    mark_verdicts,
    trial_checkpoint_counts,
    trial_validation_stats,
    verdict,
)
from experiments.views.tables import checkpoint_table, gc_history, trial_rows

EXPERIMENTS_PER_PAGE = 25
TRIALS_SHOWN = 100


def _page(request, queryset, per_page: int, param: str = "page"):
    """Page ``param`` of ``queryset`` (an invalid or missing number is page 1 or the last)."""
    return Paginator(queryset, per_page).get_page(request.GET.get(param))


# --- experiments -----------------------------------------------------------------------------


@login_required
@require_GET
def experiment_list(request):
    """All experiments with their aggregates; search, state filter, sort and pages."""
    form = ExperimentFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    sort = request.GET.get("sort", "-created")
    experiments = experiment_rows(filters.get("q"), filters.get("state"), sort)
    page = _page(request, experiments, EXPERIMENTS_PER_PAGE)
    return render(
        request,
        "experiments/experiment_list.html",
        {
            "heading": "Experiments",
            "form": form,
            "page": page,
            "filtered": bool(filters.get("q") or filters.get("state")),
            "sort_default": "-created",
        },
    )


@login_required
@require_GET
def experiment_detail(request, pk: int):
    """Summary, trials, the checkpoint table, the metric chart and the latest GC run."""
    experiment = get_object_or_404(experiments_with_trial_count(), pk=pk)
    policy = experiment.gc_policy
    totals = experiment_summary(experiment)
    table = checkpoint_table(
        request, experiment.checkpoints.all(), "-id", totals.live, totals.deleted
    )
    # Verdicts of the shown checkpoints only (the table's and the chart's trials); the
    # counts of the whole retained set load after the page (``experiment_gc_counts``).
    verdicts = Verdicts(experiment, policy)
    verdicts.want(checkpoint.trial_id for checkpoint in table.page)
    chart = page_chart(experiment, verdicts, totals.candidates, params=request.GET)
    mark_verdicts(table.page, verdicts.kept)
    mark_registered(table.page)
    trials = trial_rows(experiment, TRIALS_SHOWN)
    history = gc_history(experiment)
    return render(
        request,
        "experiments/experiment_detail.html",
        {
            "experiment": experiment,
            "policy": policy,
            "can_manage": can_manage(request.user, experiment),
            "totals": totals,
            "trials": list(trials),
            "trial_count": experiment.n_trials if experiment.n_trials > TRIALS_SHOWN else None,
            "checkpoints": table.page,
            "table": table,
            "chart": chart,
            "run": history[0] if history else None,
            "gc_history": history,
            "best": best_download(experiment),
            "ordering_default": "-id",
        },
    )


@login_required
@require_GET
def experiment_gc_counts(request, pk: int):
    """How many checkpoints the saved policy keeps and would delete: a fragment the
    experiment page loads after it renders (the whole retained set: ~100 ms at 1M)."""
    experiment = get_object_or_404(Experiment.objects.select_related("storage"), pk=pk)
    counts = policy_counts(experiment, experiment.gc_policy)  # storage: its default policy
    return render(request, "partials/gc_counts.html", counts)


# --- GC policy -------------------------------------------------------------------------------


#: Ids of each list the GC page inlines (``data-*-ids`` for "Copy all"); a longer list is
#: fetched from the API's gc-preview only when copied, so a keystroke never ships 1M ids.
PAGE_ID_LIMIT = 1000


def _preview_context(experiment: Experiment, policy) -> dict:
    """What ``partials/gc_preview.html`` shows for ``policy``: the preview and its chart.

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
    return render(request, "experiments/experiment_gc.html", context, status=status)


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
        response = render(request, "partials/gc_errors.html", {"form": form})
        if request.htmx:
            response["HX-Retarget"] = "#gc-errors"
            response["HX-Reswap"] = "innerHTML"
        else:
            response.status_code = 400
        return response
    context = {"oob_errors": True, **_preview_context(experiment, form.policy)}
    return render(request, "partials/gc_preview.html", context)


@login_required
@require_GET
def gc_run_card(request, pk: int):
    """The progress card of one GC run; polled every second until the run has finished.

    The answer that first reports the end carries ``HX-Trigger: gc-finished`` so the page
    refreshes the tables that depend on it.
    """
    run = get_object_or_404(GCRun.objects.select_related("experiment"), pk=pk)
    response = render(request, "partials/gc_run.html", {"run": run})
    if request.htmx and (run.finished_at or run.state in RUN_TERMINAL_STATES):
        response["HX-Trigger"] = "gc-finished"
    return response


# --- trials and checkpoints ------------------------------------------------------------------


@login_required
@require_GET
def trial_detail(request, pk: int):
    """One trial: its metric chart, hyperparameters and checkpoints."""
    trial = get_object_or_404(
        Trial.objects.select_related("experiment__owner", "experiment__storage"), pk=pk
    )
    experiment = trial.experiment
    verdicts = Verdicts(experiment, experiment.gc_policy)
    verdicts.want([trial.pk])  # the trial's ranks are its own, and the experiment's best
    counts = trial_checkpoint_counts(trial)
    table = checkpoint_table(
        request, trial.checkpoints.all(), "-steps_completed", counts["live"], counts["deleted"]
    )
    checkpoints = table.page
    mark_verdicts(checkpoints, verdicts.kept)
    mark_registered(checkpoints)
    stats = trial_validation_stats(trial)
    # The trial's checkpoint count bounds its candidates.
    chart = page_chart(experiment, verdicts, counts["live"], trial, stats["count"], request.GET)
    return render(
        request,
        "experiments/trial_detail.html",
        {
            "trial": trial,
            "experiment": experiment,
            "chart": chart,
            "checkpoints": checkpoints,
            "table": table,
            "can_manage": can_manage(request.user, experiment),
            "best": best_download(experiment, trial),
            "validation_stats": stats,
            "hparams": sorted(trial.hparams.items()) if isinstance(trial.hparams, dict) else [],
            "ordering_default": "-steps_completed",
        },
    )


@login_required
@require_GET
def checkpoint_detail(request, uuid):
    """One checkpoint: metadata, metrics, files with downloads, format and a load snippet."""
    checkpoint = get_object_or_404(
        Checkpoint.objects.select_related("trial", "experiment__owner", "experiment__storage"),
        uuid=uuid,
    )
    experiment = checkpoint.experiment
    validation = checkpoint_validation(checkpoint)
    keep = None
    if checkpoint.state in GC_CANDIDATE_STATES:
        kept = retained(experiment, experiment.gc_policy, trials=[checkpoint.trial_id])
        keep = verdict(checkpoint, kept)
    files = checkpoint_file_rows(checkpoint)
    download = download_links(checkpoint)
    model_format, snippet = model_format_and_snippet(
        checkpoint, files, download, request.build_absolute_uri
    )
    return render(
        request,
        "experiments/checkpoint_detail.html",
        {
            "checkpoint": checkpoint,
            "experiment": experiment,
            "trial": checkpoint.trial,
            "validation": validation,
            "metrics": sorted(validation.metrics.items()) if validation else [],
            "keep": keep,
            "can_manage": can_manage(request.user, experiment),
            "files": files,
            "download": download,
            "format": model_format,
            "snippet": snippet,
            "metadata": sorted(checkpoint.metadata.items()) if checkpoint.metadata else [],
            **registry.checkpoint_registry_context(request, checkpoint),
        },
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
