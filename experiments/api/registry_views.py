"""REST API of the model registry: models, their versions, downloads by name.

Thin: each view loads its objects, checks permissions (any signed-in user reads; the
model's owner or staff change it; registering needs only read access to the checkpoint)
and calls ``experiments.registry``. Its RegistryError is a 400 naming the field, a
RegistryConflict a 409 (both in ``ckptweb.api.exception_handler``). A version's download
is the checkpoint download view itself
(``experiments.api.downloads.CheckpointDownloadView.archive_response``), so formats, Range and
resume are the same.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from experiments import registry
from experiments.api import registry_serializers as rs
from experiments.api.downloads import ARCHIVE_RESPONSES, CheckpointDownloadView
from experiments.api.views import ERROR_409, ApiSchema, validated
from experiments.filters import ModelFilterSet
from experiments.models import Checkpoint, Model, ModelVersion
from experiments.permissions import IsOwnerOrStaffOrReadOnly, may_release_pin
from storage.archive import FORMATS

#: A model name in a URL; anything else reaches the view and becomes a JSON 404.
NAME_REGEX = "[^/]+"

MODEL_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Model name.")
VERSION = OpenApiParameter(
    "version", str, OpenApiParameter.PATH, description="Version number, or `latest`."
)


class IsModelOwnerOrStaffOrReadOnly(IsOwnerOrStaffOrReadOnly):
    """Signed-in users read; the model's owner or staff change it and its versions."""

    message = "Only the model's owner or staff may change it."


class RegistryViewMixin:
    """Shared settings of the registry views."""

    permission_classes = [IsModelOwnerOrStaffOrReadOnly]
    schema = ApiSchema()

    def get_model(self) -> Model:
        """The model named in the URL (404 otherwise), permission-checked once."""
        if not hasattr(self, "_model"):
            self._model = generics.get_object_or_404(
                Model.objects.select_related("owner"), name=self.kwargs["name"]
            )
            self.check_object_permissions(self.request, self._model)
        return self._model

    def get_version(self) -> ModelVersion:
        """The version named in the URL (``n`` or ``latest``), 404 when absent or malformed."""
        version = find_version(self.get_model(), self.kwargs["version"])
        self.check_object_permissions(self.request, version)
        return version


def find_version(model: Model, number: str) -> ModelVersion:
    """Version ``number`` (or ``latest``) of ``model``, with its checkpoint; Http404 if none."""
    try:
        version = registry.get_version(model, number)
    except (registry.RegistryError, ModelVersion.DoesNotExist):
        raise Http404(f"model {model.name} has no version {number[:20]}.") from None
    version.model = model
    return version


@extend_schema(tags=["models"])
class ModelViewSet(
    RegistryViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Registry models by name: create, list (``?search=&label=``), read, change, delete."""

    serializer_class = rs.ModelSerializer
    filterset_class = ModelFilterSet
    lookup_field = "name"
    lookup_value_regex = NAME_REGEX

    def get_queryset(self):
        return Model.objects.select_related("owner").order_by("name", "id")

    def get_object(self):
        return self.get_model()

    def list(self, request, *args, **kwargs):
        """Models, paginated, each with its latest version."""
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        latest = registry.latest_versions(page)
        data = rs.ModelSerializer(page, many=True, context={"latest": latest}).data
        return self.get_paginated_response(data)

    @extend_schema(responses={200: rs.ModelDetailSerializer})
    def retrieve(self, request, name=None):
        """A model with all its versions, newest first."""
        model = self.get_model()
        return Response(self.detail_data(model))

    @staticmethod
    def detail_data(model: Model) -> dict:
        versions = list(
            model.versions.select_related("checkpoint", "registered_by").order_by("-version")
        )
        for version in versions:
            version.model = model
        latest = {model.pk: versions[0]} if versions else {}
        context = {"latest": latest, "versions": versions}
        return rs.ModelDetailSerializer(model, context=context).data

    @extend_schema(
        request=rs.ModelCreateSerializer, responses={201: rs.ModelDetailSerializer, 409: ERROR_409}
    )
    def create(self, request):
        """Create a model; you become its owner. A taken name is a 409."""
        data = validated(rs.ModelCreateSerializer, request)
        model = registry.create_model(request.user, **data)
        return Response(self.detail_data(model), status=status.HTTP_201_CREATED)

    @extend_schema(request=rs.ModelUpdateSerializer, responses={200: rs.ModelDetailSerializer})
    def partial_update(self, request, name=None):
        """Change the description and/or labels (owner or staff)."""
        model = self.get_model()
        data = validated(rs.ModelUpdateSerializer, request)
        registry.update_model(model, **data)
        return Response(self.detail_data(model))

    @extend_schema(responses={204: None})
    def destroy(self, request, name=None):
        """Delete the model and its versions; the checkpoints stay."""
        registry.delete_model(self.get_model())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["models"], parameters=[MODEL_NAME])
class ModelVersionList(RegistryViewMixin, generics.ListCreateAPIView):
    """A model's versions, newest first; POST registers a checkpoint as the next one."""

    serializer_class = rs.ModelVersionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        return (
            ModelVersion.objects.filter(model=self.get_model())
            .select_related("model", "checkpoint", "registered_by")
            .order_by("-version")
        )

    @extend_schema(
        request=rs.ModelVersionCreateSerializer,
        responses={201: rs.ModelVersionSerializer, 409: ERROR_409},
    )
    def post(self, request, *args, **kwargs):
        """Register a COMPLETED checkpoint (any you can read) as the model's next version."""
        model = self.get_model()
        data = validated(rs.ModelVersionCreateSerializer, request)
        checkpoint = (
            Checkpoint.objects.select_related("experiment").filter(uuid=data["checkpoint"]).first()
        )
        if checkpoint is None:
            raise ValidationError(
                {"checkpoint": [f"no checkpoint with uuid {data['checkpoint']}."]}
            )
        version = registry.register_version(model, checkpoint, request.user, data.get("comment"))
        version.checkpoint = checkpoint
        return Response(rs.ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["models"], parameters=[MODEL_NAME, VERSION])
class ModelVersionDetail(RegistryViewMixin, generics.GenericAPIView):
    """One version by number or ``latest``; DELETE unpins its checkpoint (by number only)."""

    serializer_class = rs.ModelVersionSerializer

    def get(self, request, name, version):
        """The version and the checkpoint it pins."""
        return Response(rs.ModelVersionSerializer(self.get_version()).data)

    @extend_schema(responses={204: None})
    def delete(self, request, name, version):
        """Remove the version; its checkpoint is GC-able again unless otherwise pinned."""
        if version == registry.LATEST:
            raise ValidationError({"version": ["delete a version by its number, not 'latest'."]})
        # Not the model's permission alone: the pinned checkpoint's owner may release it too.
        model = generics.get_object_or_404(Model.objects.select_related("owner"), name=name)
        found = find_version(model, version)
        if not may_release_pin(request.user, found):
            raise PermissionDenied(
                "Only the model's owner, the owner of the pinned checkpoint's experiment, or "
                "staff may delete a model version."
            )
        registry.delete_version(found)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelVersionDownloadView(CheckpointDownloadView):
    """``GET models/{name}/versions/{n|latest}/download``: the pinned checkpoint's archive."""

    @extend_schema(
        operation_id="model_version_download",
        tags=["models"],
        parameters=[
            MODEL_NAME,
            VERSION,
            OpenApiParameter("format", str, enum=list(FORMATS), required=False),
        ],
        responses=ARCHIVE_RESPONSES,
    )
    def get(self, request, name, version):
        model = generics.get_object_or_404(Model, name=name)
        found = find_version(model, version)
        return self.archive_response(
            request, found.checkpoint, filename=f"{model.name}-v{found.version}"
        )
