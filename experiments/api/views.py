"""REST API views of experiments, trials, validations, checkpoints and GC runs.

Thin by design: each view loads its object (``select_related`` so lists stay at a fixed
number of queries), checks permissions, and calls ``experiments.services`` or
``experiments.gc.retention``. The services own the rules: their ``InvalidInput`` errors
become 400 responses naming the field and their ``Conflict`` (a protected or
already-deleting object) a 409, both in ``ckptweb.api.exception_handler``.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ckptweb.api import FastJSONRenderer
from ckptweb.lib.policy import Policy
from experiments import batch, services
from experiments.api import serializers as s
from experiments.api.report_items import checked_report
from experiments.filters import (
    CheckpointFilterSet,
    ExperimentFilterSet,
    GCRunFilterSet,
    TrialFilterSet,
    ValidationFilterSet,
)
from experiments.gc import runs
from experiments.gc.preview import gc_preview, page_params
from experiments.models import Checkpoint, Experiment, GCRun, Trial, TrialMetrics, Validation
from experiments.permissions import IsOwnerOrStaffOrReadOnly
from experiments.registry import versions_prefetch
from storage.config import ConfigError


class ApiSchema(AutoSchema):
    """AutoSchema that documents the error responses every endpoint can give."""

    error_codes = ("400", "401", "403", "404")

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        for code in self.error_codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    s.ErrorSerializer, code, direction=direction
                )
        return responses


ERROR_409 = OpenApiResponse(s.ErrorSerializer, description="State forbids it.")


def validated(serializer_class, request) -> dict:
    """The request body validated by ``serializer_class`` (a 400 naming the field if not)."""
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class ApiViewMixin:
    """Shared settings: owner-or-staff writes, error-documenting schema."""

    permission_classes = [IsOwnerOrStaffOrReadOnly]
    # The FilterSets own ``?ordering=`` (nulls last, stable tie-breaker), so DRF's
    # OrderingFilter from the defaults must not apply a second, different ordering.
    filter_backends = [DjangoFilterBackend]
    schema = ApiSchema()
    # Any path segment reaches the view, so a malformed id gets DRF's JSON 404.
    lookup_value_regex = "[^/]+"


# --- experiments ---------------------------------------------------------------------------


@extend_schema(tags=["experiments"])
class ExperimentViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Experiments: create, list, read, change state, delete, GC preview and policy."""

    serializer_class = s.ExperimentSerializer
    filterset_class = ExperimentFilterSet

    def get_queryset(self):
        return Experiment.objects.select_related("owner", "storage").order_by("-id")

    def filter_queryset(self, queryset):
        """The list's filters (archived=false by default) never hide one experiment."""
        if self.detail:
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(request=s.ExperimentCreateSerializer, responses={201: s.ExperimentSerializer})
    def create(self, request):
        """Create an experiment from a config (YAML text or object); you become its owner."""
        data = validated(s.ExperimentCreateSerializer, request)
        try:
            experiment = services.create_experiment(
                request.user,
                data["config"],
                data.get("name"),
                may_add_storage=request.user.is_staff,
            )
        except ConfigError as exc:
            field = "name" if exc.field == "name" else "config"
            message = str(exc)
            if exc.field not in (field, "config") and exc.field not in message:
                message = f"{exc.field}: {message}"
            raise ValidationError({field: [message]}) from None
        return Response(s.ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.ExperimentStateSerializer, responses={200: s.ExperimentStateResultSerializer}
    )
    def partial_update(self, request, pk=None):
        """Change the state (a terminal state starts a GC run, in ``gc_run``) and/or the
        name, description, labels, notes and archived flag."""
        experiment = self.get_object()
        data = dict(validated(s.ExperimentStateSerializer, request))
        state = data.pop("state", None)
        with transaction.atomic():
            services.update_experiment(experiment, **data)
            experiment.gc_run = (
                services.set_experiment_state(experiment, state) if state is not None else None
            )
        return Response(s.ExperimentStateResultSerializer(experiment).data)

    @extend_schema(responses={202: s.GCRunEnvelopeSerializer, 409: ERROR_409})
    def destroy(self, request, pk=None):
        """Delete all the experiment's files, then its rows; follow ``gc_run``."""
        run = runs.delete_experiment(self.get_object())
        return Response({"gc_run": s.GCRunSerializer(run).data}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=s.GC_PREVIEW_PARAMETERS, responses={200: s.GCPreviewSerializer})
    @action(
        detail=True,
        methods=["get"],
        url_path="gc-preview",
        filterset_class=None,
        renderer_classes=[FastJSONRenderer],
    )
    def gc_preview(self, request, pk=None):
        """What a policy would keep and delete; missing values are the current policy's.

        The id lists and bytes are whole; checkpoints is one page of them (page, page_size),
        ids descending, and count is the number of candidates.
        """
        experiment = self.get_object()
        policy = Policy.from_mapping(request.query_params, fallback=experiment.gc_policy)
        page, page_size = page_params(request.query_params)
        return Response(gc_preview(experiment, policy, page, page_size).as_dict())

    @extend_schema(
        request=s.GCPolicySerializer,
        responses={202: s.GCRunEnvelopeSerializer, 409: ERROR_409},
    )
    @action(detail=True, methods=["put"], url_path="gc-policy", filterset_class=None)
    def gc_policy(self, request, pk=None):
        """Set the GC policy and start a run that applies it."""
        experiment = self.get_object()
        data = validated(s.GCPolicySerializer, request)
        run = runs.set_gc_policy(experiment, Policy(**data), user=request.user)
        return Response({"gc_run": s.GCRunSerializer(run).data}, status=status.HTTP_202_ACCEPTED)


class ChildViewMixin(ApiViewMixin):
    """Views under a parent object's URL: the parent is loaded and authorized once.

    Subclasses name ``parent_kwarg`` and ``parent_queryset``; list views give
    ``children(parent)``, the ordered queryset they list.
    """

    parent_kwarg: str
    parent_queryset: QuerySet

    def children(self, parent):
        raise NotImplementedError

    def get_parent(self):
        if not hasattr(self, "_parent"):
            self._parent = generics.get_object_or_404(
                self.parent_queryset, pk=self.kwargs[self.parent_kwarg]
            )
            self.check_object_permissions(self.request, self._parent)
        return self._parent

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.get_serializer_class().Meta.model.objects.none()
        return self.children(self.get_parent())


class ExperimentChildMixin(ChildViewMixin):
    """Views under ``experiments/{experiment_id}/``."""

    parent_kwarg = "experiment_id"
    parent_queryset = Experiment.objects.select_related("owner", "storage")


EXPERIMENT_ID = OpenApiParameter("experiment_id", int, OpenApiParameter.PATH)
TRIAL_ID = OpenApiParameter("trial_id", int, OpenApiParameter.PATH)


class CheckpointListMixin:
    """The checkpoints of the parent (experiment or trial), newest first, with versions."""

    serializer_class = s.CheckpointSerializer
    filterset_class = CheckpointFilterSet

    def children(self, parent):
        field = self.parent_kwarg.removesuffix("_id")
        checkpoints = Checkpoint.objects.filter(**{field: parent})
        return checkpoints.prefetch_related(versions_prefetch()).order_by("-id")


@extend_schema(tags=["experiments"], parameters=[EXPERIMENT_ID])
class ExperimentCheckpointList(CheckpointListMixin, ExperimentChildMixin, generics.ListAPIView):
    """An experiment's checkpoints: ``?state=&trial=&ordering=``, metric nulls last."""


@extend_schema(tags=["experiments"], parameters=[EXPERIMENT_ID])
class ExperimentTrialList(ExperimentChildMixin, generics.ListCreateAPIView):
    """An experiment's trials; POST adds one (owner or staff)."""

    serializer_class = s.TrialSerializer
    filterset_class = TrialFilterSet

    def children(self, experiment):
        return Trial.objects.filter(experiment=experiment).order_by("id")

    @extend_schema(responses={201: s.TrialSerializer, 409: ERROR_409})
    def post(self, request, *args, **kwargs):
        """Add a trial with its hyperparameters."""
        experiment = self.get_parent()
        data = validated(self.get_serializer_class(), request)
        trial = services.create_trial(experiment, data.get("hparams"))
        return Response(s.TrialSerializer(trial).data, status=status.HTTP_201_CREATED)


# --- trials --------------------------------------------------------------------------------


@extend_schema(tags=["trials"])
class TrialViewSet(ApiViewMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One trial; PATCH changes its state (ends, pauses or resumes it)."""

    serializer_class = s.TrialSerializer

    def get_queryset(self):
        return Trial.objects.select_related("experiment").order_by("id")

    @extend_schema(
        request=s.TrialStateSerializer,
        responses={200: s.TrialStateResultSerializer, 409: ERROR_409},
    )
    def partial_update(self, request, pk=None):
        """End the trial (COMPLETED, CANCELED, ERROR) or pause and resume it.

        When the last running trial of the experiment ends, the experiment ends (COMPLETED
        if a trial completed, else CANCELED if one was canceled, else ERROR) and a GC run
        applies its policy (``gc_run``). An ended trial, or a trial of an ended experiment
        or one being deleted, is a 409.
        """
        trial = self.get_object()
        data = validated(s.TrialStateSerializer, request)
        trial.gc_run = services.set_trial_state(trial, data["state"])
        return Response(s.TrialStateResultSerializer(trial).data)


class TrialChildMixin(ChildViewMixin):
    """Views under ``trials/{trial_id}/``."""

    parent_kwarg = "trial_id"
    parent_queryset = Trial.objects.select_related("experiment")


@extend_schema(tags=["trials"], parameters=[TRIAL_ID])
class TrialValidationList(TrialChildMixin, generics.ListCreateAPIView):
    """A trial's validations by steps; POST reports one (owner or staff)."""

    serializer_class = s.ValidationSerializer
    filterset_class = ValidationFilterSet

    def children(self, trial):
        return Validation.objects.filter(trial=trial).order_by("steps_completed", "id")

    @extend_schema(responses={201: s.ValidationSerializer, 409: ERROR_409})
    def post(self, request, *args, **kwargs):
        """Report validation metrics; checkpoints at the same steps get their metric."""
        trial = self.get_parent()
        data = validated(self.get_serializer_class(), request)
        validation = services.report_validation(trial, data["steps_completed"], data["metrics"])
        return Response(s.ValidationSerializer(validation).data, status=status.HTTP_201_CREATED)


GROUP = OpenApiParameter("group", str, description="Only this group (e.g. training).")


@extend_schema(tags=["trials"], parameters=[TRIAL_ID])
class TrialMetricsList(TrialChildMixin, generics.ListCreateAPIView):
    """A trial's metrics of groups other than validations (``?group=``); POST reports one.

    DESIGN.md "Metrics groups": stored beside validations, charted on the trial page, never
    read by retention.
    """

    serializer_class = s.TrialMetricsSerializer

    def children(self, trial):
        rows = TrialMetrics.objects.filter(trial=trial)
        group = self.request.query_params.get("group")
        if group:
            rows = rows.filter(group=group)
        return rows.order_by("group", "steps_completed", "id")

    @extend_schema(parameters=[GROUP])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(responses={201: s.TrialMetricsSerializer, 409: ERROR_409})
    def post(self, request, *args, **kwargs):
        """Report ``{group, steps_completed, metrics}`` (owner or staff)."""
        trial = self.get_parent()
        data = validated(self.get_serializer_class(), request)
        item = {"steps_completed": data["steps_completed"], "metrics": data["metrics"]}
        try:
            (row,) = batch.report_metrics(trial, data["group"], [item], walked=True)
        except batch.BatchError as exc:
            raise ValidationError(exc.errors[0]) from None
        return Response(s.TrialMetricsSerializer(row).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["trials"], parameters=[TRIAL_ID])
class TrialCheckpointList(CheckpointListMixin, TrialChildMixin, generics.ListCreateAPIView):
    """A trial's checkpoints; POST reports one whose files are already on storage."""

    @extend_schema(
        request=s.CheckpointReportSerializer,
        responses={201: s.CheckpointCreatedSerializer, 409: ERROR_409},
    )
    def post(self, request, *args, **kwargs):
        """Report a checkpoint: ``{uuid?, steps_completed, resources, metadata}``."""
        trial = self.get_parent()
        data = checked_report(request)  # the serializer's rules, without its field tree
        # The parser walked every JSON value of the body: the service does not again.
        checkpoint = services.report_checkpoint(trial, **data, walked=True)
        return Response(
            s.CheckpointCreatedSerializer(checkpoint).data, status=status.HTTP_201_CREATED
        )


# --- checkpoints and GC runs ---------------------------------------------------------------


@extend_schema(tags=["checkpoints"])
class CheckpointViewSet(ApiViewMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One checkpoint by uuid: read, change metadata or protection, delete."""

    serializer_class = s.CheckpointSerializer
    lookup_field = "uuid"

    def get_queryset(self):
        checkpoints = Checkpoint.objects.select_related("experiment")
        return checkpoints.prefetch_related(versions_prefetch()).order_by("-id")

    @extend_schema(
        request=s.CheckpointUpdateSerializer,
        responses={200: s.CheckpointSerializer, 409: ERROR_409},
    )
    def partial_update(self, request, uuid=None):
        """Replace the metadata (a JSON object of at most 1 MiB) and/or set ``protected``."""
        # 409 (services.update_checkpoint) while the experiment is being deleted, or when
        # protecting a checkpoint a GC run already holds (the message names the run).
        checkpoint = self.get_object()
        data = validated(s.CheckpointUpdateSerializer, request)
        metadata = None
        if "metadata" in data:
            metadata = services.check_metadata(request.data["metadata"])
        services.update_checkpoint(checkpoint, protected=data.get("protected"), metadata=metadata)
        return Response(s.CheckpointSerializer(checkpoint).data)

    @extend_schema(responses={202: s.GCRunEnvelopeSerializer, 409: ERROR_409})
    def destroy(self, request, uuid=None):
        """Delete the checkpoint's files (a GC run); a protected checkpoint is a 409."""
        run = runs.delete_checkpoint(self.get_object(), user=request.user)
        return Response({"gc_run": s.GCRunSerializer(run).data}, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["gc-runs"])
class GCRunViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Garbage-collection runs: progress, counts and per-checkpoint errors."""

    serializer_class = s.GCRunSerializer
    filterset_class = GCRunFilterSet

    def get_queryset(self):
        return GCRun.objects.select_related("started_by").order_by("-id")
