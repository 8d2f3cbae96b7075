"""One FilterSet per model, shared by the REST API viewsets and the HTML pages.

Every FilterSet has an ``ordering`` parameter (comma-separated, ``-`` for descending).
Orderings always end with a unique tie-breaker so paginated results are stable, and
nullable columns sort their nulls last in both directions.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import BooleanField, F, Func, Value
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from ckptweb.audit.models import Action, AuditEvent
from ckptweb.jobs import RunState
from ckptweb.lib.limits import MAX_INT
from experiments.choices import CheckpointState, ExperimentState, TrialState
from experiments.models import Checkpoint, Experiment, GCRun, Model, Trial, Validation
from experiments.registry import search_models


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An integer id (``?trial=3``); rejects fractions and out-of-range numbers."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_INT)
        super().__init__(*args, **kwargs)


@extend_schema_field(OpenApiTypes.DOUBLE)
class MetricFilter(django_filters.NumberFilter):
    """A finite number bounding the validation metric (``?metric_min=0.1``)."""

    field_class = forms.FloatField  # rejects inf and nan, unlike a DecimalField


class StableOrderingFilter(django_filters.OrderingFilter):
    """``?ordering=`` with nulls last for ``nullable`` fields and an ``id`` tie-breaker.

    ``nullable`` names the model fields that may be null: they sort with nulls last
    whether ascending or descending, so "best first" never starts with unmeasured rows.
    """

    def __init__(self, *args, nullable: tuple[str, ...] = (), tiebreaker: str = "-id", **kwargs):
        self.nullable = set(nullable)
        self.tiebreaker = tiebreaker
        super().__init__(*args, **kwargs)

    def order_expressions(self, params) -> list:
        """Translate ``?ordering=`` params into order_by() expressions, tie-breaker last."""
        expressions = []
        seen = set()
        for param in params:
            if not param:
                continue
            name = self.get_ordering_value(param)
            descending = name.startswith("-")
            field = name.lstrip("-")
            if field in seen:
                continue
            seen.add(field)
            expression = F(field)
            nulls = {"nulls_last": True} if field in self.nullable else {}
            expressions.append(expression.desc(**nulls) if descending else expression.asc(**nulls))
        tiebreak_field = self.tiebreaker.lstrip("-")
        if tiebreak_field not in seen:
            expressions.append(
                F(tiebreak_field).desc()
                if self.tiebreaker.startswith("-")
                else F(tiebreak_field).asc()
            )
        return expressions

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.order_by(*self.order_expressions(value))


class HasItem(Func):
    """``HasItem(json_list_column, value)``: the JSON list holds ``value`` exactly (a
    containment probe on PostgreSQL, ``json_each`` on SQLite, which has no containment)."""

    output_field = BooleanField()
    conditional = True

    def as_sql(self, compiler, connection, **extra_context):
        column, column_params = compiler.compile(self.source_expressions[0])
        value, value_params = compiler.compile(self.source_expressions[1])
        if connection.vendor == "postgresql":
            sql = f"({column} @> jsonb_build_array({value}::text))"
        else:
            sql = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {value})"
        return sql, (*column_params, *value_params)


def with_label(queryset, label: str):
    """Experiments whose ``labels`` list holds ``label``."""
    return queryset.filter(HasItem(F("labels"), Value(label)))


class ExperimentFilterSet(django_filters.FilterSet):
    """Experiments by state, owner username (``me``: yourself), name, label and archived
    (``false`` unless asked: ``true`` or ``all``); ordered by id, name, date or state."""

    state = django_filters.ChoiceFilter(choices=ExperimentState.choices)
    owner = django_filters.CharFilter(
        method="filter_owner", help_text="Owner username; me for yourself."
    )
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Name contains.")
    label = django_filters.CharFilter(method="filter_label", help_text="Carries this label.")
    archived = django_filters.ChoiceFilter(
        choices=[("false", "false"), ("true", "true"), ("all", "all")],
        method="filter_archived",
        empty_label=None,
        null_label=None,
        help_text="false (the default), true or all.",
    )
    ordering = StableOrderingFilter(
        fields=(("id", "id"), ("name", "name"), ("created_at", "created_at"), ("state", "state"))
    )

    class Meta:
        model = Experiment
        fields = ["state", "owner", "name", "label", "archived"]

    def filter_queryset(self, queryset):
        if not self.form.cleaned_data.get("archived"):
            queryset = queryset.filter(archived=False)
        return super().filter_queryset(queryset)

    def filter_owner(self, queryset, name, value):
        if value == "me":
            user = getattr(self.request, "user", None)
            return queryset.filter(owner_id=getattr(user, "pk", None))
        return queryset.filter(owner__username=value)

    def filter_label(self, queryset, name, value):
        return with_label(queryset, value)

    def filter_archived(self, queryset, name, value):
        if value == "all":
            return queryset
        return queryset.filter(archived=value == "true")


class TrialFilterSet(django_filters.FilterSet):
    """Trials by state; ordered by id or creation time."""

    state = django_filters.ChoiceFilter(choices=TrialState.choices)
    ordering = StableOrderingFilter(
        fields=(("id", "id"), ("created_at", "created_at")), tiebreaker="id"
    )

    class Meta:
        model = Trial
        fields = ["state"]


class ValidationFilterSet(django_filters.FilterSet):
    """Validations ordered by steps (the default for metric charts) or report time."""

    ordering = StableOrderingFilter(
        fields=(("steps_completed", "steps_completed"), ("report_time", "report_time")),
        tiebreaker="id",
    )

    class Meta:
        model = Validation
        fields: list[str] = []


class CheckpointFilterSet(django_filters.FilterSet):
    """Checkpoints by state, trial and metric range; ordered by any column, nulls last."""

    state = django_filters.ChoiceFilter(choices=CheckpointState.choices)
    trial = IdFilter(field_name="trial_id", help_text="Trial id.")
    metric_min = MetricFilter(
        field_name="validation_metric", lookup_expr="gte", help_text="Validation metric ≥."
    )
    metric_max = MetricFilter(
        field_name="validation_metric", lookup_expr="lte", help_text="Validation metric ≤."
    )
    ordering = StableOrderingFilter(
        fields=(
            ("id", "id"),
            ("trial_id", "trial"),
            ("steps_completed", "steps_completed"),
            ("report_time", "report_time"),
            ("size_bytes", "size_bytes"),
            ("validation_metric", "validation_metric"),
            ("state", "state"),
        ),
        nullable=("validation_metric",),
    )

    class Meta:
        model = Checkpoint
        fields = ["state", "trial", "metric_min", "metric_max"]


class GCRunFilterSet(django_filters.FilterSet):
    """GC runs by experiment and state, newest first unless ordered otherwise."""

    experiment = IdFilter(field_name="experiment_id", help_text="Experiment id.")
    state = django_filters.ChoiceFilter(choices=RunState.choices)
    ordering = StableOrderingFilter(fields=(("id", "id"), ("created_at", "created_at")))

    class Meta:
        model = GCRun
        fields = ["experiment", "state"]


class ModelFilterSet(django_filters.FilterSet):
    """Registry models: ``?search=`` (name, description, labels), ``?label=`` (exact), owner.

    Ordered by name unless ``?ordering=`` says otherwise.
    """

    search = django_filters.CharFilter(
        method="filter_search", help_text="Name, description or a label contains."
    )
    label = django_filters.CharFilter(method="filter_label", help_text="Has this exact label.")
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner username.")
    ordering = StableOrderingFilter(
        fields=(("name", "name"), ("created_at", "created_at"), ("updated_at", "updated_at")),
        tiebreaker="id",
    )

    class Meta:
        model = Model
        fields = ["search", "label", "owner"]

    def filter_search(self, queryset, name, value):
        return search_models(queryset, value) if value else queryset

    def filter_label(self, queryset, name, value):
        if not value or "," in value:
            return queryset.none() if value else queryset
        return queryset.filter(label_index__contains=f",{value},")


class AuditEventFilterSet(django_filters.FilterSet):
    """Audit events by actor username, action, experiment id and time (newest first)."""

    actor = django_filters.CharFilter(field_name="actor_name", help_text="Actor username.")
    action = django_filters.ChoiceFilter(choices=Action.choices)
    experiment = IdFilter(field_name="experiment_id", help_text="Experiment id.")
    since = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="gte", help_text="At or after (ISO 8601)."
    )

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "experiment", "since"]
