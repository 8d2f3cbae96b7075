"""Representations of the REST API (docs/architecture.md "REST API") and validation of its input.

Serializers only shape and type-check data; the rules (config parsing, metric and
resource checks, GC) live in ``experiments.services`` and ``experiments.gc.retention``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from ckptweb.jobs import RunState
from ckptweb.lib.limits import MAX_INT, InvalidInput, check_json
from ckptweb.lib.policy import MAX_POLICY_VALUE, POLICY_FIELDS
from experiments.choices import CheckpointState, ExperimentState, TrialState
from experiments.models import Checkpoint, Experiment, GCRun, Trial, TrialMetrics, Validation


def storable(value, field: str):
    """``value`` if ``ckptweb.lib.limits.check_json`` takes it (NUL, Unicode, numbers, depth;
    the size is the services' rule), else a ValidationError with its message.

    A JSON body's values passed the same check in ``ckptweb.api.LimitedJSONParser``; a form
    body's did not, and PostgreSQL cannot store ``\\u0000``: a 400 here, not a 500 later.
    """
    try:
        return check_json(value, field, max_bytes=None)
    except InvalidInput as exc:
        raise serializers.ValidationError(exc.message) from None


def state_field(choices: type, exclude: tuple[str, ...] = (), name: str = "", **kwargs):
    """A ChoiceField over a state enum, documented inline in the schema.

    Four models share the field name ``state`` with different choices; drf-spectacular
    would hoist each into an ``Enum`` component and warn that it cannot name them apart.
    Wrapping the enum in ``allOf`` keeps it inline, so the schema stays warning-free.
    ``name`` (default: the enum's) heads the description.
    """
    values = [value for value in choices.values if value not in exclude]
    schema = {
        "allOf": [{"type": "string", "enum": values}],
        "description": f"{name or choices.__name__}: {', '.join(values)}.",
    }
    field_class = extend_schema_field(schema)(
        type(f"{choices.__name__}Field", (serializers.ChoiceField,), {})
    )
    return field_class(choices=values, **kwargs)


class ErrorSerializer(serializers.Serializer):
    """Every error body: a sentence naming the field, plus DRF's per-field lists."""

    message = serializers.CharField(help_text="Human-readable, names the offending field.")
    detail = serializers.CharField(required=False)


class GCPolicySerializer(serializers.Serializer):
    # The docstring is the schema's description, kept byte for byte; the rule it names is
    # docs/architecture.md "Retention".
    """The three ``save_*`` numbers of a GC policy (DESIGN.md "Retention")."""

    save_experiment_best = serializers.IntegerField(min_value=0, max_value=MAX_POLICY_VALUE)
    save_trial_best = serializers.IntegerField(min_value=0, max_value=MAX_POLICY_VALUE)
    save_trial_latest = serializers.IntegerField(min_value=0, max_value=MAX_POLICY_VALUE)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "Experiment config as YAML text."},
            {"type": "object", "additionalProperties": True},
        ]
    }
)
class ConfigField(serializers.Field):
    """An experiment config: YAML text or an already-parsed JSON object."""

    default_error_messages = {"invalid": "config must be YAML text or a JSON object."}

    def to_internal_value(self, data):
        if isinstance(data, str | dict):
            return storable(data, "config")
        self.fail("invalid")

    def to_representation(self, value):
        return value


class ExperimentSerializer(serializers.ModelSerializer):
    """An experiment: owner by username, storage by id, effective GC policy, redacted config."""

    owner = serializers.CharField(source="owner.username", read_only=True)
    storage = serializers.IntegerField(source="storage_id", read_only=True)
    gc_policy = GCPolicySerializer(read_only=True)
    config = serializers.JSONField(read_only=True, help_text="Parsed config, secrets redacted.")
    state = state_field(ExperimentState, read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "description",
            "labels",
            "notes",
            "archived",
            "owner",
            "state",
            "searcher_metric",
            "smaller_is_better",
            "storage",
            "gc_policy",
            "config",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ExperimentCreateSerializer(serializers.Serializer):
    """POST experiments: a config (YAML text or object) and an optional name override."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    config = ConfigField()


class ExperimentStateSerializer(serializers.Serializer):
    """PATCH experiments/{id}: the new state (DELETING is reached through DELETE only) and/or
    the lifecycle fields; ``services.update_experiment`` checks their limits."""

    state = state_field(ExperimentState, exclude=(ExperimentState.DELETING,), required=False)
    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    labels = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False
    )
    notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    archived = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                {"state": ["give state, name, description, labels, notes or archived."]}
            )
        return attrs


class GCRunSerializer(serializers.ModelSerializer):
    """A GC run as the dashboard and the CLI follow it."""

    experiment_id = serializers.IntegerField(read_only=True)
    checkpoint_id = serializers.IntegerField(read_only=True, allow_null=True)
    policy = GCPolicySerializer(read_only=True)
    # Every run's lifecycle; the schema has always called a GC run's states GCRunState.
    state = state_field(RunState, name="GCRunState", read_only=True)
    reason = serializers.CharField(read_only=True)
    started_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Who started it; null when automatic."
    )
    errors = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        read_only=True,
        help_text="[{checkpoint: uuid, error: text}]",
    )

    class Meta:
        model = GCRun
        fields = [
            "id",
            "experiment_id",
            "reason",
            "started_by",
            "checkpoint_id",
            "globs",
            "state",
            "policy",
            "total",
            "deleted",
            "failed",
            "reclaimed_bytes",
            "errors",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class GCRunEnvelopeSerializer(serializers.Serializer):
    """202 body of the calls that start a GC run."""

    gc_run = GCRunSerializer()


class ExperimentStateResultSerializer(ExperimentSerializer):
    """PATCH experiments/{id}: the experiment, plus the GC run a terminal state started."""

    gc_run = GCRunSerializer(read_only=True, allow_null=True)

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "gc_run"]
        read_only_fields = fields


class TrialSerializer(serializers.ModelSerializer):
    """A trial of an experiment."""

    experiment_id = serializers.IntegerField(read_only=True)
    hparams = serializers.DictField(required=False, default=dict)
    state = state_field(TrialState, read_only=True)

    class Meta:
        model = Trial
        fields = ["id", "experiment_id", "hparams", "state", "created_at"]
        read_only_fields = ["id", "experiment_id", "state", "created_at"]

    def validate_hparams(self, value):
        return storable(value, "hparams")


class TrialStateSerializer(serializers.Serializer):
    """PATCH trials/{id}: the new state (``services.set_trial_state`` owns the machine)."""

    state = state_field(
        TrialState,
        error_messages={"invalid_choice": f'"{{input}}" is not one of {", ".join(TrialState)}.'},
    )


class TrialStateResultSerializer(TrialSerializer):
    """PATCH trials/{id}: the trial, its experiment's state, and the GC run its end started."""

    experiment_state = state_field(
        ExperimentState,
        source="experiment.state",
        read_only=True,
        help_text="COMPLETED, CANCELED or ERROR once the last running trial has ended.",
    )
    gc_run = GCRunSerializer(
        read_only=True,
        allow_null=True,
        help_text="The run that applies the policy, when this change ended the experiment.",
    )

    class Meta(TrialSerializer.Meta):
        fields = [*TrialSerializer.Meta.fields, "experiment_state", "gc_run"]
        read_only_fields = fields


class ValidationSerializer(serializers.ModelSerializer):
    """A validation: the metrics a trial reported after ``steps_completed`` steps."""

    trial_id = serializers.IntegerField(read_only=True)
    steps_completed = serializers.IntegerField(min_value=0, max_value=MAX_INT)
    metrics = serializers.DictField(
        child=serializers.FloatField(), help_text="Metric name → finite number."
    )

    class Meta:
        model = Validation
        fields = ["id", "trial_id", "steps_completed", "metrics", "report_time"]
        read_only_fields = ["id", "trial_id", "report_time"]

    def to_internal_value(self, data):
        """Keep the metric values as sent (ints stay ints); services check finiteness."""
        validated = super().to_internal_value(data)
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            try:
                validated["metrics"] = storable(data["metrics"], "metrics")
            except serializers.ValidationError as exc:  # named, as a field's own errors are
                raise serializers.ValidationError({"metrics": exc.detail}) from None
        return validated


class TrialMetricsSerializer(ValidationSerializer):
    """Metrics of a group other than validations (``training``, …) after ``steps_completed``."""

    group = serializers.CharField(
        max_length=64, help_text="training, or any name but validation ([A-Za-z0-9_.-])."
    )

    class Meta:
        model = TrialMetrics
        fields = ["id", "trial_id", "group", "steps_completed", "metrics", "report_time"]
        read_only_fields = ["id", "trial_id", "report_time"]


class CheckpointSerializer(serializers.ModelSerializer):
    """A checkpoint with its files (path → bytes), metadata and validation metric."""

    trial_id = serializers.IntegerField(read_only=True)
    experiment_id = serializers.IntegerField(read_only=True)
    resources = serializers.DictField(child=serializers.IntegerField(min_value=0))
    metadata = serializers.DictField()
    state = state_field(CheckpointState, read_only=True)
    model_versions = serializers.SerializerMethodField(
        help_text='"NAME vN" of every model version pinning it (never garbage-collected).'
    )

    class Meta:
        model = Checkpoint
        fields = [
            "id",
            "uuid",
            "trial_id",
            "experiment_id",
            "steps_completed",
            "state",
            "resources",
            "size_bytes",
            "metadata",
            "validation_metric",
            "protected",
            "model_versions",
            "report_time",
        ]
        read_only_fields = fields

    def get_model_versions(self, checkpoint) -> list[str]:
        return [f"{v.model.name} v{v.version}" for v in checkpoint.model_versions.all()]


class CheckpointReportSerializer(serializers.Serializer):
    """POST trials/{id}/checkpoints: a checkpoint whose files are already on storage."""

    uuid = serializers.UUIDField(required=False, help_text="Generated when omitted.")
    steps_completed = serializers.IntegerField(min_value=0, max_value=MAX_INT)
    resources = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_INT),
        required=False,
        help_text="Relative file path → size in bytes.",
    )
    metadata = serializers.DictField(required=False, help_text="JSON object, at most 1 MiB.")

    def validate_resources(self, value):
        if sum(value.values()) > MAX_INT:
            raise serializers.ValidationError("resources add up to more than 2**63-1 bytes.")
        return value

    def validate_metadata(self, value):
        return storable(value, "metadata")

    def to_internal_value(self, data):
        """Keep resources as sent (no "5" → 5 coercion); the service checks them strictly."""
        validated = super().to_internal_value(data)
        if isinstance(data, dict) and isinstance(data.get("resources"), dict):
            validated["resources"] = data["resources"]
        return validated


class CheckpointCreatedSerializer(serializers.ModelSerializer):
    """201 body of POST trials/{id}/checkpoints."""

    state = state_field(CheckpointState, read_only=True)

    class Meta:
        model = Checkpoint
        fields = ["id", "uuid", "state"]
        read_only_fields = fields


class CheckpointUpdateSerializer(serializers.Serializer):
    """PATCH checkpoints/{uuid}: replace the metadata and/or set protection."""

    metadata = serializers.DictField(required=False, help_text="Replaces; at most 1 MiB.")
    protected = serializers.BooleanField(required=False)

    def validate_metadata(self, value):
        return storable(value, "metadata")


class PreviewCheckpointSerializer(serializers.Serializer):
    """One candidate checkpoint in a GC preview, with the verdict."""

    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    trial_id = serializers.IntegerField()
    steps_completed = serializers.IntegerField()
    validation_metric = serializers.FloatField(allow_null=True)
    size_bytes = serializers.IntegerField()
    keep = serializers.BooleanField()
    reason = serializers.CharField(
        allow_null=True,
        help_text='Why it is always kept: "registered as NAME vN" or "protected"; else null.',
    )


class RunningTrialSerializer(serializers.Serializer):
    """A trial still running whose latest checkpoint the policy would delete."""

    trial_id = serializers.IntegerField()
    checkpoint_id = serializers.IntegerField(help_text="The trial's latest checkpoint.")
    uuid = serializers.CharField()
    steps_completed = serializers.IntegerField()


class GCPreviewSerializer(serializers.Serializer):
    # The docstring is the schema's description, kept byte for byte; the contract it names is
    # docs/architecture.md "Scale contract".
    """What a GC policy would keep and delete (DESIGN.md ``gc-preview``); ids descending.

    The id lists and ``reclaimed_bytes`` cover every candidate; ``checkpoints`` is one page.
    """

    policy = GCPolicySerializer()
    retained_ids = serializers.ListField(child=serializers.IntegerField())
    deleted_ids = serializers.ListField(child=serializers.IntegerField())
    reclaimed_bytes = serializers.IntegerField()
    metric_name = serializers.CharField()
    count = serializers.IntegerField(help_text="Candidates in all pages of checkpoints.")
    checkpoints = PreviewCheckpointSerializer(
        many=True, help_text="One page (page, page_size), ids descending."
    )
    running_trials = RunningTrialSerializer(
        many=True,
        help_text="Trials still running (ACTIVE or PAUSED, in an ACTIVE or PAUSED experiment) "
        "whose latest checkpoint this policy would delete: what they would resume from.",
    )


#: The query parameters of ``gc-preview``: a policy (missing values are the current one's)
#: and the page of ``checkpoints`` (``experiments.gc.preview.page_params``).
GC_PREVIEW_PARAMETERS = [
    *(
        OpenApiParameter(
            field, int, description="Defaults to the experiment's current policy.", required=False
        )
        for field in POLICY_FIELDS
    ),
    OpenApiParameter("page", int, description="Page of checkpoints, from 1.", required=False),
    OpenApiParameter(
        "page_size",
        int,
        description="Rows of checkpoints per page: 1 to 1000, default 200.",
        required=False,
    ),
]
