"""``GET experiments/{id}/best-checkpoint[?trial=T]``: the best live checkpoint (``best``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from ckptweb.lib.limits import MAX_INT
from experiments.api import serializers as s
from experiments.api.views import EXPERIMENT_ID, ExperimentChildMixin
from experiments.downloads import best_checkpoint
from experiments.models import Checkpoint


@extend_schema(
    tags=["experiments"],
    parameters=[EXPERIMENT_ID, OpenApiParameter("trial", int, required=False)],
    responses=s.CheckpointSerializer,
)
class BestCheckpointView(ExperimentChildMixin, generics.GenericAPIView):
    """The experiment's (or one trial's) best downloadable checkpoint; 404 when none."""

    serializer_class = s.CheckpointSerializer
    filter_backends: list = []

    def get_queryset(self):
        return Checkpoint.objects.none()

    def get(self, request, experiment_id):
        experiment = self.get_parent()
        trial = request.query_params.get("trial")
        if trial is not None:
            if not trial.isdigit() or int(trial) > MAX_INT:
                raise ValidationError({"trial": ["trial: a trial id (a whole number)."]})
            trial = int(trial)
        checkpoint = best_checkpoint(experiment, trial)
        if checkpoint is None:
            where = f"trial {trial}" if trial is not None else f"experiment {experiment.pk}"
            raise NotFound(
                f"{where} has no live checkpoint with a validation metric "
                f"({experiment.searcher_metric})."
            )
        return Response(self.get_serializer(checkpoint).data)
