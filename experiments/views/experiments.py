"""Dashboard pages of experiments and trials: the list, an experiment, a trial.

Every page needs a signed-in user; anyone signed in may look, only the experiment's owner
or staff may change anything. Views stay thin: the queries are ``experiments.views.queries``
(counts do not grow with the number of checkpoints) and the charts a sample of bounded size
chosen by the database (``experiments.charts``). The GC pages are ``views.gc``, the
checkpoint pages ``views.checkpoints``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from experiments.charts import page_chart
from experiments.forms import ExperimentFilterForm
from experiments.gc.record import attention_list
from experiments.gc.retention import Verdicts
from experiments.models import Trial
from experiments.permissions import can_manage
from experiments.registry import mark_registered
from experiments.views.checkpoint_files import (
    best_download,
)
from experiments.views.queries import (
    experiment_rows,
    experiment_summary,
    experiments_with_trial_count,
    mark_verdicts,
    trial_checkpoint_counts,
    trial_validation_stats,
)
from experiments.views.tables import checkpoint_table, gc_history, trial_rows

EXPERIMENTS_PER_PAGE = 25
TRIALS_SHOWN = 100
#: Checkpoints that need attention listed on the experiment page (the count is whole).
ATTENTION_SHOWN = 20


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
    attention, attention_count = attention_list(experiment.checkpoints.all(), ATTENTION_SHOWN)
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
            "attention": attention,
            "attention_count": attention_count,
        },
    )


# --- trials ------------------------------------------------------------------


#: Log lines the trial page shows (the latest).
TRIAL_PAGE_LOG_LINES = 200


def latest_log_lines(trial: Trial) -> list[str]:
    """The trial's latest ``TRIAL_PAGE_LOG_LINES`` log lines, oldest first."""
    newest = trial.log_lines.order_by("-id").values_list("line", flat=True)
    return list(reversed(newest[:TRIAL_PAGE_LOG_LINES]))


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
            "log_lines": latest_log_lines(trial),
            "ordering_default": "-steps_completed",
        },
    )
