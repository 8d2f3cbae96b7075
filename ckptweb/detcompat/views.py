"""The ``/det-compat/`` routes: Determined's REST calls, answered by ckptweb's services.

Each view parses Determined's request (JSON whatever the Content-Type, camelCase names),
calls the same service or rule ckptweb's own API calls, and answers in Determined's shape
(``translate``) with status 200. Errors keep their ckptweb status (400 naming the field,
401, 403 with the permission message, 404, 409, 410) in Determined's error body.
"""

from __future__ import annotations

import json
import re
import uuid as uuid_lib

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import StreamingHttpResponse
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ckptweb.api import exception_handler
from ckptweb.detcompat import translate
from ckptweb.detcompat.auth import (
    INVALID_CREDENTIALS,
    DetBearerAuthentication,
    det_login,
    issue_token,
    revoke_token,
)
from experiments import partial_deletion, services
from experiments.api.permissions import IsOwnerOrStaffOrReadOnly, is_owner_or_staff
from experiments.api.views import ensure_not_deleting
from experiments.models import Checkpoint, Experiment
from experiments.retention import InvalidPolicy, Policy, deleted_checkpoints
from storage import services as storage_services
from storage.api.views import JSONErrorsNegotiation, api_exception, logged

#: What ``GET info`` reports; the client compares ``version`` with its own (PEP 440).
DET_VERSION = "0.38.1"
#: Most checkpoints in one page of ``experiments/{id}/checkpoints`` (the client pages on).
MAX_PAGE = 1000
#: Most uuids in one delete or rm request.
MAX_UUIDS = 1000
#: Determined's camelCase names of the GC policy fields.
POLICY_NAMES = {
    "saveExperimentBest": "save_experiment_best",
    "saveTrialBest": "save_trial_best",
    "saveTrialLatest": "save_trial_latest",
}
SORTS = {
    "SORT_BY_UUID": "uuid",
    "SORT_BY_TRIAL_ID": "trial_id",
    "SORT_BY_BATCH_NUMBER": "steps_completed",
    "SORT_BY_END_TIME": "report_time",
    "SORT_BY_STATE": "state",
}


def det_exception_handler(exc, context):
    """ckptweb's error response, with the body Determined reads: message and error.error."""
    response = exception_handler(api_exception(exc), context)
    if response is not None:
        message = str(response.data.get("message", "")) if isinstance(response.data, dict) else ""
        response.data = {"message": message, "error": {"error": message}}
    return response


class PayloadTooLarge(APIException):
    """413: the body is over Django's DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = 413
    default_code = "payload_too_large"


def json_body(request) -> dict:
    """The request body as a JSON object, whatever the Content-Type (Determined sends none)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise PayloadTooLarge(f"body: the request body is over {limit} bytes.") from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationError({"body": ["the request body must be JSON."]}) from None
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
    """The checkpoints named in ``checkpointUuids``, each one the user may change."""
    body = UuidListSerializer(data=data)
    body.is_valid(raise_exception=True)
    uuids = list(dict.fromkeys(body.validated_data["checkpointUuids"]))
    found = {c.uuid: c for c in checkpoints_queryset().filter(uuid__in=uuids)}
    for key in uuids:
        if key not in found:
            raise NotFound(f"checkpoint {key} not found.")
        ensure_may_change(request, found[key])
        ensure_not_deleting(found[key].experiment)
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


class InfoView(DetView):
    """``GET info``: the version the client checks; no login needed."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response(
            {
                "version": DET_VERSION,
                "masterId": "ckptweb",
                "clusterId": "ckptweb",
                "clusterName": "ckptweb",
                "telemetry": {"enabled": False},
                "ssoProviders": [],
            }
        )


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(allow_blank=True, max_length=4096, trim_whitespace=False)
    isHashed = serializers.BooleanField(default=False)  # noqa: N815 - Determined's name


class LoginView(DetView):
    """``POST api/v1/auth/login``: a new Bearer token for valid credentials, else 403."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        body = LoginSerializer(data=json_body(request))
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = det_login(data["username"], data["password"], data["isHashed"])
        if user is None:
            raise PermissionDenied(INVALID_CREDENTIALS)
        return Response({"token": issue_token(user), "user": translate.user_json(user)})


class LogoutView(DetView):
    """``POST api/v1/auth/logout``: revokes the token of this request only."""

    def post(self, request):
        revoke_token(request.auth)
        return Response({})


class MeView(DetView):
    """``GET api/v1/me``: the token's user (the client's token check)."""

    def get(self, request):
        return Response({"user": translate.user_json(request.user)})


class ExperimentView(DetView):
    """``GET``/``PATCH api/v1/experiments/{id}``; PATCH sets the GC policy only."""

    def get(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        body = translate.experiment_json(experiment)
        return Response({"experiment": body, "config": body["config"]})

    def patch(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        ensure_may_change(request, experiment)
        data = json_body(request)
        unknown = sorted(set(data) - {"id", "checkpointStorage"})
        if unknown:
            raise ValidationError(
                {unknown[0]: ["only checkpointStorage (the GC policy) can be changed here."]}
            )
        section = data.get("checkpointStorage")
        if not isinstance(section, dict):
            raise ValidationError({"checkpointStorage": ["must be an object of save* numbers."]})
        extra = sorted(set(section) - set(POLICY_NAMES))
        if extra:
            raise ValidationError({f"checkpointStorage.{extra[0]}": ["cannot be changed."]})
        values = {POLICY_NAMES[name]: value for name, value in section.items()}
        try:
            policy = Policy.from_values(values, fallback=experiment.gc_policy)
        except InvalidPolicy as exc:
            camel = {snake: camel for camel, snake in POLICY_NAMES.items()}[exc.field]
            raise ValidationError({f"checkpointStorage.{camel}": [str(exc)]}) from None
        ensure_not_deleting(experiment)
        services.set_gc_policy(experiment, policy)
        experiment.refresh_from_db()
        return Response({"experiment": translate.experiment_json(experiment)})


class ExperimentCheckpointsView(DetView):
    """``GET api/v1/experiments/{id}/checkpoints``: sortByAttr, orderBy, limit, offset, states."""

    def get(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        queryset = checkpoints_queryset().filter(experiment=experiment)
        states = request.query_params.getlist("states")
        if states:
            selected = []
            for state in states:
                if state not in translate.CHECKPOINT_STATE_FILTERS and state not in (
                    "STATE_UNSPECIFIED",
                    "STATE_ACTIVE",
                ):
                    raise ValidationError({"states": [f"unknown state {state[:40]!r}."]})
                selected += translate.CHECKPOINT_STATE_FILTERS.get(state, [])
            queryset = queryset.filter(state__in=selected)
        queryset = queryset.order_by(*self.ordering(request, experiment))
        if request.query_params.get("sortByAttr") == "SORT_BY_SEARCHER_METRIC" or (
            request.query_params.get("sortByMetric")
        ):
            queryset = queryset.exclude(validation_metric__isnull=True)  # "best" needs one
        total = queryset.count()
        offset = int_param(request, "offset", 0, minimum=None)
        if offset < 0:
            offset = max(total + offset, 0)
        limit = int_param(request, "limit", 0) or MAX_PAGE
        rows = list(queryset[offset : offset + min(limit, MAX_PAGE)])
        return Response(
            {
                "checkpoints": translate.checkpoints_json(rows),
                "pagination": {
                    "offset": offset,
                    "limit": limit,
                    "startIndex": offset,
                    "endIndex": offset + len(rows),
                    "total": total,
                },
            }
        )

    @staticmethod
    def ordering(request, experiment: Experiment) -> list:
        """ORDER BY for Determined's sortByAttr/sortByMetric and orderBy."""
        sort = request.query_params.get("sortByAttr") or "SORT_BY_UNSPECIFIED"
        metric = request.query_params.get("sortByMetric")
        order = request.query_params.get("orderBy") or "ORDER_BY_UNSPECIFIED"
        if order not in ("ORDER_BY_UNSPECIFIED", "ORDER_BY_ASC", "ORDER_BY_DESC"):
            raise ValidationError({"orderBy": [f"unknown order {order[:40]!r}."]})
        if metric and metric != experiment.searcher_metric:
            raise ValidationError(
                {"sortByMetric": [f"only the searcher metric {experiment.searcher_metric!r}."]}
            )
        if sort == "SORT_BY_SEARCHER_METRIC" or metric:
            ascending = experiment.smaller_is_better
            if order != "ORDER_BY_UNSPECIFIED":
                ascending = order == "ORDER_BY_ASC"
            # Ties as retention breaks them: smaller steps_completed, then smaller id.
            return [("" if ascending else "-") + "validation_metric", "steps_completed", "id"]
        if sort not in SORTS and sort != "SORT_BY_UNSPECIFIED":
            raise ValidationError({"sortByAttr": [f"unknown sort {sort[:40]!r}."]})
        field = SORTS.get(sort, "report_time")
        sign = "-" if order == "ORDER_BY_DESC" else ""
        return [sign + field, sign + "id"]


class CheckpointView(DetView):
    """``GET api/v1/checkpoints/{uuid}``."""

    def get(self, request, uuid):
        checkpoint = get_checkpoint(uuid)
        return Response({"checkpoint": translate.checkpoints_json([checkpoint])[0]})


class CheckpointsView(DetView):
    """``DELETE api/v1/checkpoints {checkpointUuids}``: one ckptweb deletion run each.

    All or nothing: every checkpoint is checked (exists, owner or staff, not protected)
    in one transaction before any run is enqueued. Ones already DELETED or DELETING need
    no new run.
    """

    def delete(self, request):
        with transaction.atomic():
            for checkpoint in checkpoints_of(request, json_body(request)):
                if checkpoint.state in ("DELETED", "DELETING"):
                    continue
                try:
                    services.delete_checkpoint(checkpoint)
                except services.CheckpointProtected as exc:
                    raise Conflict(str(exc)) from None
        return Response({})


class CheckpointsRemoveFilesView(DetView):
    """``POST api/v1/checkpoints/rm {checkpointUuids, checkpointGlobs}``: partial deletion.

    Each checkpoint with files matching the globs gets a FILES run
    (``experiments.partial_deletion.delete_files``); checkpoints where nothing matches are
    left alone, and if nothing matches anywhere the service's 400 is the answer. An empty
    glob list (Determined's "refresh resources from storage") is not supported.
    """

    def post(self, request):
        data = json_body(request)
        globs = data.get("checkpointGlobs")
        if not isinstance(globs, list) or not globs:
            raise ValidationError(
                {
                    "checkpointGlobs": [
                        "give at least one glob; refreshing resources from storage "
                        "(no globs) is not supported."
                    ]
                }
            )
        with transaction.atomic():
            checkpoints = checkpoints_of(request, data)
            try:
                globs = partial_deletion.check_globs(globs)
                matching = [
                    c for c in checkpoints if partial_deletion.matching_files(c.resources, globs)
                ]
                for checkpoint in matching or checkpoints[:1]:
                    partial_deletion.delete_files(checkpoint, globs)
            except partial_deletion.GlobError as exc:
                raise ValidationError({"checkpointGlobs": [str(exc)]}) from None
            except partial_deletion.FilesNotDeletable as exc:
                raise Conflict(str(exc)) from None
        return Response({})


class Conflict(PermissionDenied):
    """409: the checkpoint's state forbids the request (protected, deleting)."""

    status_code = 409
    default_code = "conflict"


class CheckpointDownloadView(DetView):
    """``GET checkpoints/{uuid}``: the checkpoint as a streamed gzip'd tar (no seeking).

    The client untars ``response.raw`` front to back, so the body is a tgz (``Content-Type:
    application/gzip``, no ``Content-Encoding``), streamed by ckptweb's own archive code.
    """

    def get(self, request, uuid):
        checkpoint = get_checkpoint(uuid)
        storage_services.ensure_downloadable(checkpoint)
        archive = storage_services.checkpoint_archive(checkpoint)
        response = StreamingHttpResponse(
            logged(archive.stream("tgz"), str(checkpoint.uuid)), content_type="application/gzip"
        )
        response["Content-Disposition"] = f'attachment; filename="{checkpoint.uuid}.tgz"'
        return response


class PreviewGCView(DetView):
    """``GET experiments/{id}/preview_gc?save_*=``: the checkpoints a policy would delete.

    Missing values are the experiment's current policy, as for ckptweb's ``gc-preview``.
    """

    def get(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        try:
            policy = Policy.from_values(request.query_params, fallback=experiment.gc_policy)
        except InvalidPolicy as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        ids = deleted_checkpoints(experiment, policy)
        doomed = list(checkpoints_queryset().filter(pk__in=ids).order_by("trial_id", "id"))
        metrics = translate.validation_metrics(doomed)
        rows = [
            translate.preview_gc_row(c, metrics.get((c.trial_id, c.steps_completed)))
            for c in doomed
        ]
        return Response({"checkpoints": rows, "metric_name": experiment.searcher_metric})
