"""Tables of the experiment and trial pages: checkpoints (filters kept in the URL), trials
with live/deleted counts, and the GC history.

The filters are ``CheckpointFilterSet``'s (the API's, one implementation): ``state``,
``trial``, ``metric_min``, ``metric_max`` and ``ordering``. The page adds one rule of its
own: DELETED rows are hidden unless ``?deleted=1`` (or ``?state=DELETED``) asks for them,
because after a GC run they outnumber the live ones. Invalid values are ignored by the
FilterSet and shown as messages beside the filters. The unfiltered counts come from the
caller's aggregates so the paginator does not count again.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Min, Q, QuerySet

from experiments.choices import CheckpointState
from experiments.filters import CheckpointFilterSet

CHECKPOINTS_PER_PAGE = 50
GC_HISTORY = 20
FILTER_PARAMS = ("state", "trial", "metric_min", "metric_max")


@dataclass
class CheckpointTable:
    """A page of checkpoints with the filters that chose it."""

    page: Page
    filterset: CheckpointFilterSet
    show_deleted: bool
    filtered: bool  # a filter other than the deleted toggle is active
    n_deleted: int | None

    @property
    def errors(self) -> list[str]:
        form = self.filterset.form
        return [f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()]


def _page(request, queryset, count: int | None) -> Page:
    paginator = Paginator(queryset, CHECKPOINTS_PER_PAGE)
    if count is not None:
        paginator.count = count  # a cached_property: the instance value wins
    return paginator.get_page(request.GET.get("page"))


def checkpoint_table(
    request,
    queryset: QuerySet,
    default_ordering: str,
    live: int | None = None,
    deleted: int | None = None,
) -> CheckpointTable:
    """The filtered, ordered page of ``queryset`` for this request.

    ``live`` and ``deleted`` are the counts of the unfiltered queryset when the caller
    knows them (they save a COUNT and label the "show deleted" toggle).
    """
    params = request.GET.copy()
    if not params.get("ordering"):
        params["ordering"] = default_ordering
    filterset = CheckpointFilterSet(params, queryset=queryset)
    filterset.is_valid()
    state = filterset.form.cleaned_data.get("state")
    show_deleted = request.GET.get("deleted") == "1" or state == CheckpointState.DELETED
    rows = filterset.qs
    if not show_deleted:
        rows = rows.exclude(state=CheckpointState.DELETED)
    filtered = any(request.GET.get(name) for name in FILTER_PARAMS)
    count = None
    if not filtered and live is not None:
        count = live + (deleted or 0) if show_deleted else live
    return CheckpointTable(_page(request, rows, count), filterset, show_deleted, filtered, deleted)


def trial_rows(experiment, limit: int):
    """The experiment's trials with live and deleted checkpoint counts, latest step, best."""
    deleted = Q(checkpoints__state=CheckpointState.DELETED)
    return experiment.trials.annotate(
        n_live=Count("checkpoints", filter=~deleted),
        n_deleted=Count("checkpoints", filter=deleted),
        best_min=Min("checkpoints__validation_metric"),
        best_max=Max("checkpoints__validation_metric"),
        latest_steps=Max("checkpoints__steps_completed"),
    ).order_by("id")[:limit]


def gc_history(experiment) -> list:
    """The experiment's latest ``GC_HISTORY`` GC runs, newest first, with who started them."""
    return list(
        experiment.gc_runs.select_related("started_by", "checkpoint").order_by("-id")[:GC_HISTORY]
    )
