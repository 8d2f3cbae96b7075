"""Representations of the model registry API (docs/architecture.md "Model registry").

Shape and type only; names, labels, lengths and the COMPLETED rule are checked by
``experiments.registry``, whose errors name the field.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.api.serializers import state_field
from experiments.choices import CheckpointState
from experiments.models.registry import Model, ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    """A version: the checkpoint it pins (uuid, experiment, metric, size), who and when."""

    model = serializers.CharField(source="model.name", read_only=True)
    checkpoint = serializers.UUIDField(source="checkpoint.uuid", read_only=True)
    checkpoint_id = serializers.IntegerField(read_only=True)
    experiment_id = serializers.IntegerField(source="checkpoint.experiment_id", read_only=True)
    trial_id = serializers.IntegerField(source="checkpoint.trial_id", read_only=True)
    steps_completed = serializers.IntegerField(source="checkpoint.steps_completed", read_only=True)
    validation_metric = serializers.FloatField(
        source="checkpoint.validation_metric", read_only=True, allow_null=True
    )
    size_bytes = serializers.IntegerField(source="checkpoint.size_bytes", read_only=True)
    state = state_field(CheckpointState, source="checkpoint.state", read_only=True)
    registered_by = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "version",
            "checkpoint",
            "checkpoint_id",
            "experiment_id",
            "trial_id",
            "steps_completed",
            "validation_metric",
            "size_bytes",
            "state",
            "comment",
            "registered_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_registered_by(self, version) -> str | None:
        return version.registered_by.username if version.registered_by_id else None


class ModelSerializer(serializers.ModelSerializer):
    """A model with its latest version (null when it has none)."""

    owner = serializers.CharField(source="owner.username", read_only=True)
    labels = serializers.ListField(child=serializers.CharField())
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Model
        fields = [
            "id",
            "name",
            "description",
            "labels",
            "owner",
            "latest_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ModelVersionSerializer(allow_null=True))
    def get_latest_version(self, model):
        latest = self.context.get("latest", {}).get(model.pk)
        return ModelVersionSerializer(latest).data if latest else None


class ModelDetailSerializer(ModelSerializer):
    """A model with every version, newest first."""

    versions = serializers.SerializerMethodField()

    class Meta(ModelSerializer.Meta):
        fields = [*ModelSerializer.Meta.fields, "versions"]
        read_only_fields = fields

    @extend_schema_field(ModelVersionSerializer(many=True))
    def get_versions(self, model):
        return ModelVersionSerializer(self.context.get("versions", []), many=True).data


class ModelCreateSerializer(serializers.Serializer):
    """POST models: ``{name, description?, labels?}``."""

    name = serializers.CharField(
        trim_whitespace=False, help_text="Letters, digits, '.', '_', '-'; at most 128."
    )
    description = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=10_000
    )
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=32
    )


class ModelUpdateSerializer(serializers.Serializer):
    """PATCH models/{name}: ``{description?, labels?}``."""

    description = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=10_000
    )
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=32
    )


class ModelVersionCreateSerializer(serializers.Serializer):
    """POST models/{name}/versions: ``{checkpoint: uuid, comment?}``."""

    checkpoint = serializers.UUIDField(help_text="The uuid of a COMPLETED checkpoint.")
    comment = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=10_000
    )
