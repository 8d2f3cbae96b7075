"""The audit log page (``/audit/``): who did what, filterable; staff see everything, others
the events of their experiments and models and their own (``visible_audit_events``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ckptweb.audit.models import Action
from experiments.filters import AuditEventFilterSet
from experiments.permissions import visible_audit_events

EVENTS_PER_PAGE = 50
FILTERS = ("actor", "action", "experiment", "since")


@login_required
@require_GET
def audit_log(request):
    filterset = AuditEventFilterSet(
        request.GET, queryset=visible_audit_events(request.user).order_by("-at", "-id")
    )
    events = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
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
