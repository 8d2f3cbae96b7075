"""Shared plumbing of the ``/det-compat/`` views: bodies, parameters, lookups, errors.

``DetView`` is the base of every route: Determined Bearer tokens, JSON always (whatever
``Accept`` says, since the download route's Accept names the archive), ckptweb's own
error statuses in Determined's body ``{"message": m, "error": {"error": m}}`` (the services'
``InvalidInput`` and ``Conflict`` included, through ``ckptweb.api.exception_handler``), and no
place in ckptweb's OpenAPI schema. Request bodies are read by ``json_body`` whatever their
Content-Type (Determined's bindings send none).
"""

from __future__ import annotations

import re
import uuid as uuid_lib

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import FloatField, OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ckptweb.api import exception_handler
from ckptweb.detcompat.auth import DetBearerAuthentication
from ckptweb.lib.limits import InvalidInput, check_text, parse_json
from experiments.api.downloads import JSONErrorsNegotiation
from experiments.models import Checkpoint, Experiment, Trial, Validation
from experiments.permissions import IsOwnerOrStaffOrReadOnly, is_owner_or_staff

#: Most uuids in one delete or rm request.
MAX_UUIDS = 1000


def det_exception_handler(exc, context):
    """ckptweb's error response, with the body Determined reads: message and error.error."""
    response = exception_handler(exc, context)
    if response is not None:
        message = str(response.data.get("message", "")) if isinstance(response.data, dict) else ""
        response.data = {"message": message, "error": {"error": message}}
    return response


class PayloadTooLarge(APIException):
    """413: the body is over Django's DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = 413
    default_code = "payload_too_large"


def request_json(request):
    """The request body as JSON within ckptweb's JSON limits, whatever the Content-Type
    (Determined sends none); an empty body is ``{}``. A 413 past the body limit, a 400
    naming ``body`` for anything that is not JSON."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise PayloadTooLarge(f"body: the request body is over {limit} bytes.") from None
    if not raw.strip():
        return {}
    try:
        return parse_json(raw, "body", max_bytes=None)
    except InvalidInput as exc:
        raise ValidationError({"body": [exc.message]}) from None


def json_body(request) -> dict:
    """The request body as a JSON object (``request_json``)."""
    data = request_json(request)
    if not isinstance(data, dict):
        raise ValidationError({"body": ["the request body must be a JSON object."]})
    return data


def int_param(request, name: str, default: int | None = None, minimum: int | None = 0):
    """One integer query parameter, or a 400 naming it."""
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValidationError({name: [f"must be an integer, not {text[:40]!r}."]}) from None
    if minimum is not None and value < minimum:
        raise ValidationError({name: [f"must be at least {minimum}."]})
    if abs(value) > 2**31:
        raise ValidationError({name: ["is too large."]})
    return value


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment, or a 404."""
    if not re.fullmatch(r"[0-9]{1,18}", experiment_id):
        raise NotFound(f"experiment {experiment_id[:40]!r} not found.")
    experiment = (
        Experiment.objects.select_related("storage", "owner").filter(pk=int(experiment_id)).first()
    )
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found.")
    return experiment


def get_trial(trial_id: str) -> Trial:
    """The trial (its experiment, owner and storage selected), or a 404."""
    if not re.fullmatch(r"[0-9]{1,18}", trial_id):
        raise NotFound(f"trial {trial_id[:40]!r} not found.")
    trial = (
        Trial.objects.select_related("experiment__storage", "experiment__owner")
        .filter(pk=int(trial_id))
        .first()
    )
    if trial is None:
        raise NotFound(f"trial {trial_id} not found.")
    return trial


def metric_name(name, field: str = "sortByMetric") -> str:
    """A validation metric name from a request, or a 400 naming ``field``."""
    try:
        return check_text(name, field, 255)
    except InvalidInput as exc:
        raise ValidationError({field: [exc.message]}) from None


def metric_value(name: str, outer: str = "trial_id", steps: str | None = "steps_completed"):
    """The value of validation metric ``name`` in the latest validation at the outer row's
    (trial, step) - the rule ``services.latest_validations`` applies - as a float, or null
    where none was reported. ``steps=None``: any step (an outer validation's own row)."""
    rows = Validation.objects.filter(trial_id=OuterRef(outer))
    if steps is not None:
        rows = rows.filter(steps_completed=OuterRef(steps))
    value = Cast(KeyTextTransform(name, "metrics"), FloatField())
    return Subquery(rows.order_by("-id").annotate(value=value).values("value")[:1])


def checkpoints_queryset():
    return Checkpoint.objects.select_related("trial", "experiment__storage", "experiment__owner")


def get_checkpoint(uuid: str) -> Checkpoint:
    """The checkpoint, or a 404 (a malformed uuid included)."""
    try:
        key = uuid_lib.UUID(str(uuid))
    except ValueError:
        raise NotFound(f"checkpoint {str(uuid)[:80]!r} not found.") from None
    checkpoint = checkpoints_queryset().filter(uuid=key).first()
    if checkpoint is None:
        raise NotFound(f"checkpoint {uuid} not found.")
    return checkpoint


def ensure_may_change(request, obj) -> None:
    """ckptweb's rule: the experiment's owner or staff change it (403 with its message)."""
    if not is_owner_or_staff(request.user, obj):
        raise PermissionDenied(IsOwnerOrStaffOrReadOnly.message)


class UuidListSerializer(serializers.Serializer):
    """``checkpointUuids`` of the delete and rm requests."""

    checkpointUuids = serializers.ListField(  # noqa: N815 - Determined's field name
        child=serializers.UUIDField(), allow_empty=False, max_length=MAX_UUIDS
    )


def checkpoints_of(request, data: dict) -> list[Checkpoint]:
    """The checkpoints named in ``checkpointUuids``, each one the user may change.

    All or nothing: one in an experiment being deleted refuses the whole request (the
    services' rule, checked for each before any is changed).
    """
    body = UuidListSerializer(data=data)
    body.is_valid(raise_exception=True)
    uuids = list(dict.fromkeys(body.validated_data["checkpointUuids"]))
    found = {c.uuid: c for c in checkpoints_queryset().filter(uuid__in=uuids)}
    for key in uuids:
        if key not in found:
            raise NotFound(f"checkpoint {key} not found.")
        ensure_may_change(request, found[key])
        found[key].experiment.ensure_not_deleting()
    return [found[key] for key in uuids]


class DetView(APIView):
    """Base of the compat views: Bearer tokens, JSON always, Determined's error body."""

    authentication_classes = [DetBearerAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsNegotiation
    #: Determined's API, not ckptweb's: kept out of /api/schema/.
    schema = None

    def get_exception_handler(self):
        return det_exception_handler
