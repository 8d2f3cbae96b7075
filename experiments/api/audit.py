"""GET audit-events: the audit log (``ckptweb.audit``), newest first, as the caller may see it
(``experiments.permissions.visible_audit_events``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from ckptweb.audit.models import AuditEvent
from experiments.api.views import ApiViewMixin
from experiments.filters import AuditEventFilterSet
from experiments.permissions import visible_audit_events


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_name", help_text="The username, or empty for the system."
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id", "at", "actor", "ip", "action", "target_type", "target_id",
            "experiment_id", "before", "after",
        ]  # fmt: skip


@extend_schema(tags=["audit"])
class AuditEventList(ApiViewMixin, generics.ListAPIView):
    """Who did what: ``?actor=&action=&experiment=&since=``, paginated, newest first. Staff
    see everything; others the events of their experiments and models, and their own."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet

    def get_queryset(self):
        return visible_audit_events(self.request.user).order_by("-at", "-id")
