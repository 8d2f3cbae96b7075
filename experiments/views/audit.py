"""The audit log page (``/audit/``): who did what, filterable; staff see everything, others
the events of their experiments and models and their own (``visible_audit_events``)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ckptweb.audit.models import Action
from experiments.filters import AuditEventFilterSet
from experiments.permissions import visible_audit_events

EVENTS_PER_PAGE = 50
FILTERS = ("actor", "action", "experiment", "since")
#: Longest value shown in the Change column (the API has the whole event).
MAX_SHOWN_CHARS = 80


def shown(value) -> str:
    """A before/after value as compact JSON, cut to ``MAX_SHOWN_CHARS``."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def changes(event) -> list[tuple[str, str | None, str | None]]:
    """``(field, before, after)`` rows of an event, a value None where that side lacks it;
    fields whose value did not change are left out when both sides have them."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    rows = []
    for key in [*before, *(key for key in after if key not in before)]:
        if key in before and key in after and before[key] == after[key]:
            continue
        rows.append(
            (
                key,
                shown(before[key]) if key in before else None,
                shown(after[key]) if key in after else None,
            )
        )
    return rows


@login_required
@require_GET
def audit_log(request):
    filterset = AuditEventFilterSet(
        request.GET, queryset=visible_audit_events(request.user).order_by("-at", "-id")
    )
    events = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    for event in page:
        event.changes = changes(event)
    return render(
        request,
        "experiments/audit.html",
        {
            "heading": "Audit log",
            "page": page,
            "actions": Action.choices,
            "values": {name: request.GET.get(name, "") for name in FILTERS},
            "errors": filterset.errors,
            "filtered": any(request.GET.get(name) for name in FILTERS),
        },
    )
