"""REST views of batch ingest: ``POST trials/{id}/checkpoints:batch`` and ``validations:batch``.

The body is ``{"items": [report, …]}`` (1 to ``experiments.batch.MAX_BATCH`` reports, each
shaped like the single report's body); 201 answers ``{"items": [created, …]}`` in the
order sent. Refused items come back by index, all of them at once:
``400 {"items": {"3": {"uuid": ["…"]}}, "message": "items[3].uuid: …"}`` — first the
items whose shape is wrong (types, ranges), then, once every item parses, the rules of
``experiments.batch`` (resources, metadata, metrics, uuids already taken). Nothing is
stored unless every item is accepted. Same permission and deleting-experiment rule (409)
as the single reports.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from experiments import batch
from experiments.api import serializers as s
from experiments.api.report_items import checkpoint_report, validation_report
from experiments.api.views import ERROR_409, TRIAL_ID, TrialChildMixin

ITEMS_HELP = f"1 to {batch.MAX_BATCH:,} reports, stored in one transaction (all or none)."


class CheckpointBatchSerializer(serializers.Serializer):
    """POST trials/{id}/checkpoints:batch."""

    items = s.CheckpointReportSerializer(
        many=True, allow_empty=False, max_length=batch.MAX_BATCH, help_text=ITEMS_HELP
    )


class CheckpointBatchCreatedSerializer(serializers.Serializer):
    """201 body of POST trials/{id}/checkpoints:batch, in the order sent."""

    items = s.CheckpointCreatedSerializer(many=True)


class ValidationBatchSerializer(serializers.Serializer):
    """POST trials/{id}/validations:batch, and its 201 body."""

    items = s.ValidationSerializer(
        many=True, allow_empty=False, max_length=batch.MAX_BATCH, help_text=ITEMS_HELP
    )


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "object",
                "description": "Item index → field → messages.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            {
                "type": "array",
                "items": {"type": "string"},
                "description": "The list as a whole (missing, empty, over the limit).",
            },
        ]
    }
)
class ItemErrorsField(serializers.JSONField):
    """``{"3": {"uuid": ["…"]}}`` for refused items, or messages about the whole list."""


class BatchErrorSerializer(s.ErrorSerializer):
    """400 of a batch: the refused items by index (``{"3": {"uuid": ["…"]}}``)."""

    items = ItemErrorsField()


BATCH_400 = OpenApiResponse(BatchErrorSerializer, description="Refused items, by index.")


def items_error(errors: dict) -> ValidationError:
    """Per-item errors as the 400 body ``{"items": {index: {field: [msg]}}, "message"}``."""
    refused = batch.BatchError(errors)
    items = {str(index): fields for index, fields in refused.errors.items()}
    return ValidationError({"items": items, "message": refused.message})


def well_formed_items(data) -> list | None:
    """``data["items"]`` when it is a list of 1 to ``MAX_BATCH`` entries, else None."""
    items = data.get("items") if isinstance(data, dict) else None
    if isinstance(items, list) and 0 < len(items) <= batch.MAX_BATCH:
        return items
    return None


def checked_items(request, check, serializer_class) -> list[dict]:
    """The reports of the body, each checked by ``check`` (``report_items``: the
    serializer's rules without its field tree per item); a body that is not a list of 1
    to ``MAX_BATCH`` items gets ``serializer_class``'s 400."""
    items = well_formed_items(request.data)
    if items is None:
        return parsed_items(serializer_class, request)
    reports, errors = [], {}
    for index, item in enumerate(items):
        report, refused = check(item)
        if refused:
            errors[index] = refused
        reports.append(report)
    if errors:
        raise items_error(errors)
    return reports


def parsed_items(serializer_class, request) -> list[dict]:
    """The request's items parsed by ``serializer_class``, or the 400 naming them by index."""
    body = serializer_class(data=request.data)
    if body.is_valid():
        return body.validated_data["items"]
    detail = body.errors.get("items")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        detail = dict(enumerate(detail))  # DRF's shape for a list of items
    if isinstance(detail, dict) and "non_field_errors" in detail:  # the list as a whole
        raise ValidationError({"items": detail["non_field_errors"]})
    if isinstance(detail, dict):  # nested fields give {index: {field: [message]}}
        raise items_error({int(i): fields for i, fields in detail.items() if fields})
    raise ValidationError(body.errors)


class BatchView(TrialChildMixin, generics.GenericAPIView):
    """A batch endpoint: load and authorize the trial, check each item with ``check``
    (``serializer_class``'s 400 for a body that is no list of items), store them with
    ``report`` and answer with ``created_serializer``."""

    created_serializer = None
    check = None  # (item) -> (report, errors), from experiments.api.report_items
    report = None  # (trial, items, walked) -> created rows, from experiments.batch

    def post(self, request, *args, **kwargs):
        trial = self.get_parent()
        items = checked_items(request, type(self).check, self.serializer_class)
        try:
            # The parser walked every JSON value of the body: the service does not again.
            created = type(self).report(trial, items, walked=True)
        except batch.BatchError as exc:
            raise items_error(exc.errors) from None
        body = {"items": self.created_serializer(created, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


def batch_schema(name: str, request, response):
    """The OpenAPI operation of one batch endpoint."""
    return extend_schema(
        operation_id=f"v1_trials_{name}_batch_create",
        request=request,
        responses={201: response, 400: BATCH_400, 409: ERROR_409},
    )


@extend_schema(tags=["trials"], parameters=[TRIAL_ID])
@extend_schema_view(
    post=batch_schema("checkpoints", CheckpointBatchSerializer, CheckpointBatchCreatedSerializer)
)
class TrialCheckpointBatch(BatchView):
    """Report up to 1,000 checkpoints of a trial at once:
    ``{"items": [{uuid?, steps_completed, resources, metadata}]}``."""

    serializer_class = CheckpointBatchSerializer
    created_serializer = s.CheckpointCreatedSerializer
    check = checkpoint_report
    report = batch.report_checkpoints


@extend_schema(tags=["trials"], parameters=[TRIAL_ID])
@extend_schema_view(
    post=batch_schema("validations", ValidationBatchSerializer, ValidationBatchSerializer)
)
class TrialValidationBatch(BatchView):
    """Report up to 1,000 validations of a trial at once:
    ``{"items": [{steps_completed, metrics}]}``."""

    serializer_class = ValidationBatchSerializer
    created_serializer = s.ValidationSerializer
    check = validation_report
    report = batch.report_validations
