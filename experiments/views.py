"""Dashboard pages of experiments, trials, checkpoints and GC policies.

Every page needs a signed-in user; anyone signed in may look, only the experiment's owner
or staff may change anything (apply a GC policy, protect a checkpoint). Query counts do not
grow with the number of checkpoints: tables are paginated in the database, counts are
aggregates, and the GC verdicts come from ``retention.retained`` — one query of the small
retained set (a candidate not in it is deleted) — never from a list of every candidate.
The charts read a sample of bounded size chosen by the database (``experiments.charts``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ckptweb.limits import ByteSum
from experiments import registry_pages
from experiments.best import best_checkpoint
from experiments.chart_options import page_chart
from experiments.choices import GC_CANDIDATE_STATES, GC_RUN_TERMINAL_STATES, CheckpointState
from experiments.forms import ExperimentFilterForm, GCPolicyForm
from experiments.models import POLICY_FIELDS, Checkpoint, Experiment, GCRun, Trial, Validation
from experiments.page_filters import checkpoint_table, gc_history, trial_rows
from experiments.registry import mark_registered, registered_versions
from experiments.retention import Policy, candidates, retained
from experiments.services import set_gc_policy
from experiments.snippets import detect_format, load_snippet
from storage.services import GONE_STATES, checkpoint_files, is_text_file, read_text_preview

EXPERIMENTS_PER_PAGE = 25
TRIALS_SHOWN = 100
PREVIEW_ROWS = 200


# --- queries ---------------------------------------------------------------------------------

LIVE = ~Q(state=CheckpointState.DELETED)
EXPERIMENT_SORTS = {
    "name": ["name"],
    "owner": ["owner__username"],
    "state": ["state"],
    "trials": ["n_trials"],
    "checkpoints": ["n_live"],
    "bytes": ["live_bytes"],
    # Grouped by metric, then best first: a loss and an accuracy never share one scale.
    "best": ["searcher_metric", "best_score"],
    "created": ["created_at"],
}


def _per_experiment(queryset, aggregate, output_field):
    """A correlated subquery: ``aggregate`` over ``queryset`` rows of the outer experiment."""
    rows = queryset.filter(experiment=OuterRef("pk")).order_by().values("experiment")
    return Subquery(rows.annotate(v=aggregate).values("v")[:1], output_field=output_field)


def experiment_rows(q: str | None, state: str | None, sort: str):
    """Experiments with trial and checkpoint counts, bytes on storage and best metric."""
    live = Checkpoint.objects.filter(LIVE)
    measured = Checkpoint.objects.filter(validation_metric__isnull=False)
    rows = (
        Experiment.objects.select_related("owner", "storage")
        .annotate(
            n_trials=Coalesce(_per_experiment(Trial.objects, Count("id"), IntegerField()), 0),
            n_live=Coalesce(_per_experiment(live, Count("id"), IntegerField()), 0),
            n_deleted=Coalesce(
                _per_experiment(
                    Checkpoint.objects.filter(state=CheckpointState.DELETED),
                    Count("id"),
                    IntegerField(),
                ),
                0,
            ),
            live_bytes=Coalesce(_per_experiment(live, ByteSum("size_bytes"), BigIntegerField()), 0),
            best_metric=Case(
                When(
                    smaller_is_better=True,
                    then=_per_experiment(measured, Min("validation_metric"), FloatField()),
                ),
                default=_per_experiment(measured, Max("validation_metric"), FloatField()),
            ),
        )
        .annotate(
            # Smaller is better for every experiment's score: ascending is best first.
            best_score=Case(
                When(smaller_is_better=True, then=F("best_metric")),
                default=-F("best_metric"),
                output_field=FloatField(),
            )
        )
    )
    if q:
        rows = rows.filter(
            Q(name__icontains=q) | Q(description__icontains=q) | Q(owner__username__icontains=q)
        )
    if state:
        rows = rows.filter(state=state)
    descending = sort.startswith("-")
    fields = EXPERIMENT_SORTS.get(sort.lstrip("-"), ["created_at"])
    order = [
        F(f).desc(nulls_last=True) if descending else F(f).asc(nulls_last=True) for f in fields
    ]
    return rows.order_by(*order, "-id")


def checkpoint_totals(experiment: Experiment) -> dict:
    """Counts and bytes of an experiment's checkpoints, live, deleted and GC candidates.

    One query; ``candidates`` (COMPLETED or PARTIALLY_DELETED) minus the retained set is
    what the current policy would delete.
    """
    return experiment.checkpoints.aggregate(
        live=Count("id", filter=LIVE),
        deleted=Count("id", filter=Q(state=CheckpointState.DELETED)),
        live_bytes=Coalesce(ByteSum("size_bytes", filter=LIVE), 0),
        protected=Count("id", filter=Q(protected=True)),
        candidates=Count("id", filter=Q(state__in=GC_CANDIDATE_STATES)),
    )


def verdict(checkpoint, kept: dict[int, int]) -> bool | None:
    """Kept (True) or deleted (False) under the policy whose retained set is ``kept``.

    None for a checkpoint that is no GC candidate (DELETED, DELETING, ERROR).
    """
    if checkpoint.state not in GC_CANDIDATE_STATES:
        return None
    return checkpoint.id in kept


def can_manage(user, experiment: Experiment) -> bool:
    """Owners and staff may change an experiment; everyone else only looks."""
    return user.is_authenticated and (user.is_staff or experiment.owner_id == user.pk)


def _page(request, queryset, per_page: int, param: str = "page", count: int | None = None):
    """Page ``param`` of ``queryset``; ``count``, when the caller knows it, saves a COUNT."""
    paginator = Paginator(queryset, per_page)
    if count is not None:
        paginator.count = count  # a cached_property: the instance value wins
    return paginator.get_page(request.GET.get(param))


def _latest_run(experiment: Experiment) -> GCRun | None:
    return experiment.gc_runs.order_by("-id").first()


# --- checkpoint files, downloads and formats -------------------------------------------------

PREVIEW_MAX_BYTES = 64 * 1024
PREVIEW_MAX_FILES = 4


@dataclass(frozen=True)
class FileRow:
    """A file of a checkpoint as the page lists it."""

    path: str
    size: int
    url: str | None = None
    preview: str | None = None


def _url_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def download_links(checkpoint: Checkpoint) -> dict:
    """Archive download URLs of the storage app's routes; not available once files go.

    The buttons' archives unpack into one named folder (``?folder=1``, ``storage.bundles``);
    ``tar_root`` is the API's default layout, relative to the checkpoint root, for scripts.
    """
    base = _url_or_none("checkpoint-download", checkpoint.uuid)
    links = {
        fmt: f"{base}?format={fmt}&folder=1" if base else None for fmt in ("tar", "tgz", "zip")
    }
    links["tar_root"] = f"{base}?format=tar" if base else None
    return links | {"available": bool(base) and checkpoint.state not in GONE_STATES}


def checkpoint_file_rows(checkpoint: Checkpoint) -> dict:
    """The checkpoint's files as listed by its storage, with download links and previews.

    Falls back to the reported ``resources`` when storage cannot be listed (the page says
    so), and lists nothing for a DELETED checkpoint whose files are gone.
    """
    error, source = None, "storage"
    stored = None
    if checkpoint.state != CheckpointState.DELETED:
        try:
            stored = [(f.path, f.size) for f in checkpoint_files(checkpoint)]
        except Exception as exc:  # a storage outage must not take the page down
            error = checkpoint.experiment.storage.scrub(str(exc)) or exc.__class__.__name__
    if checkpoint.state == CheckpointState.DELETED:
        return {"files": [], "source": "deleted", "error": None}
    if stored is None:
        source = "reported"
        stored = sorted((checkpoint.resources or {}).items())
    rows, previews = [], 0
    for path, size in stored:
        preview = None
        if (
            source == "storage"
            and previews < PREVIEW_MAX_FILES
            and is_text_file(path)
            and size <= PREVIEW_MAX_BYTES
        ):
            try:
                preview = read_text_preview(checkpoint, path)
            except Exception:  # noqa: S112 - a preview is optional
                preview = None
            previews += preview is not None
        url = (
            _url_or_none("checkpoint-file", checkpoint.uuid, path) if source == "storage" else None
        )
        rows.append(FileRow(path, size, url, preview))
    return {"files": rows, "source": source, "error": error}


def best_download(experiment: Experiment, trial: Trial | None = None) -> dict | None:
    """The best live checkpoint (``experiments.best``) and its archive links, or None."""
    checkpoint = best_checkpoint(experiment, trial)
    return checkpoint and {"checkpoint": checkpoint, **download_links(checkpoint)}


def set_protected(checkpoint: Checkpoint, protected: bool) -> None:
    """Protect a checkpoint from garbage collection, or lift the protection."""
    Checkpoint.objects.filter(pk=checkpoint.pk).update(protected=protected)
    checkpoint.protected = protected


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
    experiment = get_object_or_404(
        Experiment.objects.select_related("owner", "storage").annotate(
            n_trials=Coalesce(_per_experiment(Trial.objects, Count("id"), IntegerField()), 0)
        ),
        pk=pk,
    )
    policy = Policy(**experiment.gc_policy)
    kept = retained(experiment, policy)
    totals = checkpoint_totals(experiment)
    table = checkpoint_table(
        request, experiment.checkpoints.all(), "-id", totals["live"], totals["deleted"]
    )
    for checkpoint in table.page:
        checkpoint.keep = verdict(checkpoint, kept)
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
            "kept_count": len(kept),
            "deleted_count": totals["candidates"] - len(kept),
            "trials": list(trials),
            "trial_count": experiment.n_trials if experiment.n_trials > TRIALS_SHOWN else None,
            "checkpoints": table.page,
            "table": table,
            "chart": page_chart(experiment, kept, totals["candidates"], params=request.GET),
            "run": history[0] if history else None,
            "gc_history": history,
            "best": best_download(experiment),
            "ordering_default": "-id",
        },
    )


# --- GC policy -------------------------------------------------------------------------------


def _preview_context(experiment: Experiment, policy: Policy) -> dict:
    """What ``partials/gc_preview.html`` shows for ``policy``: ids, counts, chart, table.

    The ``#gc-preview`` contract names every candidate, so their ids and sizes are read in
    one narrow query (which also gives the counts and bytes, where ``retention_summary``
    would scan them again); the verdicts come from the retained set; the table's rows are
    the first ``PREVIEW_ROWS`` by id, read from the database, with the model versions that
    pin them (the "registered as NAME vN" reason). Eight queries.
    """
    kept = retained(experiment, policy)
    deleted_ids, reclaimed = [], 0
    for pk, size in candidates(experiment).order_by("-id").values_list("id", "size_bytes"):
        if pk not in kept:
            deleted_ids.append(pk)
            reclaimed += size
    retained_ids = sorted(kept, reverse=True)
    rows = [
        {**row, "keep": row["id"] in kept}
        for row in candidates(experiment)
        .order_by("-id")
        .values(
            "id",
            "uuid",
            "trial_id",
            "steps_completed",
            "validation_metric",
            "size_bytes",
            "protected",
        )[:PREVIEW_ROWS]
    ]
    registered = registered_versions(row["id"] for row in rows)
    for row in rows:
        row["registered_as"] = ", ".join(registered.get(row["id"], []))
    total = len(kept) + len(deleted_ids)
    preview = {
        "policy": policy.as_dict(),
        "retained_ids": retained_ids,
        "deleted_ids": deleted_ids,
        "reclaimed_bytes": reclaimed,
        "metric_name": experiment.searcher_metric,
    }
    return {
        "experiment": experiment,
        "preview": preview,
        # 100k ids: joined once here, not per use in the template.
        "retained_csv": ",".join(map(str, retained_ids)),
        "deleted_csv": ",".join(map(str, deleted_ids)),
        "retained_count": len(kept),
        "deleted_count": len(deleted_ids),
        "rows": rows,
        "rows_hidden": max(0, total - len(rows)),
        "chart": page_chart(experiment, kept, total),
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
        if form.is_valid():
            run = set_gc_policy(experiment, form.policy, user=request.user)
            messages.success(
                request,
                f"Saved GC policy {_policy_text(form.policy)} and started GC run #{run.pk}.",
            )
            return redirect("experiments:gc", pk=experiment.pk)
        status = 400
    elif any(name in request.GET for name in POLICY_FIELDS):
        form = GCPolicyForm(experiment, request.GET)
    else:
        form = GCPolicyForm(experiment, experiment.gc_policy)
    valid = form.is_valid()
    policy = form.policy if valid else Policy(**experiment.gc_policy)
    context = {
        "form": form,
        "can_manage": manage,
        "current_policy": experiment.gc_policy,
        "run": _latest_run(experiment),
        **_preview_context(experiment, policy),
    }
    return render(request, "experiments/experiment_gc.html", context, status=status)


def _policy_text(policy: Policy) -> str:
    return "/".join(str(v) for v in policy.as_dict().values())


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
    if request.htmx and (run.finished_at or run.state in GC_RUN_TERMINAL_STATES):
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
    kept = retained(experiment, Policy(**experiment.gc_policy))
    counts = trial.checkpoints.aggregate(
        live=Count("id", filter=LIVE), deleted=Count("id", filter=~LIVE)
    )
    table = checkpoint_table(
        request, trial.checkpoints.all(), "-steps_completed", counts["live"], counts["deleted"]
    )
    checkpoints = table.page
    for checkpoint in checkpoints:
        checkpoint.keep = verdict(checkpoint, kept)
    mark_registered(checkpoints)
    stats = trial.validations.aggregate(count=Count("id"), latest=Max("steps_completed"))
    # The trial's checkpoint count bounds its candidates.
    chart = page_chart(experiment, kept, counts["live"], trial, stats["count"], request.GET)
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
    validation = (
        Validation.objects.filter(
            trial_id=checkpoint.trial_id, steps_completed=checkpoint.steps_completed
        )
        .order_by("-id")
        .first()
    )
    keep = None
    if checkpoint.state in GC_CANDIDATE_STATES:
        keep = verdict(checkpoint, retained(experiment, Policy(**experiment.gc_policy)))
    files = checkpoint_file_rows(checkpoint)
    download = download_links(checkpoint)
    model_format = detect_format([f.path for f in files["files"]])
    snippet = None
    if model_format and download["available"]:
        snippet = load_snippet(
            model_format, checkpoint, request.build_absolute_uri(download["tar_root"])
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
            **registry_pages.checkpoint_registry_context(request, checkpoint),
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
    set_protected(checkpoint, protected)
    messages.success(
        request,
        "Checkpoint protected: garbage collection will keep it."
        if protected
        else "Checkpoint unprotected: the GC policy decides whether it is kept.",
    )
    return redirect(reverse("experiments:checkpoint", args=[checkpoint.uuid]))
