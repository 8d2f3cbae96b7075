"""The ``/det-compat/`` routes: Determined's REST calls, answered by ckptweb's services.

Each view parses Determined's request (JSON whatever the Content-Type, camelCase names),
calls the same service or rule ckptweb's own API calls, and answers in Determined's shape
(``translate``) with status 200. Errors keep their ckptweb status (400 naming the field,
401, 403 with the permission message, 404, 409, 410) in Determined's error body.
"""

from __future__ import annotations

from django.db import transaction
from django.http import StreamingHttpResponse
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from ckptweb.detcompat import translate
from ckptweb.detcompat.auth import INVALID_CREDENTIALS, det_login, issue_token, revoke_token
from ckptweb.detcompat.base import (
    DetView,
    checkpoints_of,
    checkpoints_queryset,
    ensure_may_change,
    get_checkpoint,
    get_experiment,
    int_param,
    json_body,
)
from ckptweb.lib.db import chunked
from ckptweb.lib.policy import InvalidPolicy, Policy
from experiments import downloads
from experiments.api.downloads import logged
from experiments.choices import GONE_STATES
from experiments.gc import files, runs
from experiments.gc.globs import GlobError, check_globs, matching_files
from experiments.gc.preview import gc_preview
from experiments.models import Experiment

#: What ``GET info`` reports; the client compares ``version`` with its own (PEP 440).
DET_VERSION = "0.38.1"
#: Most checkpoints in one page of ``experiments/{id}/checkpoints`` (the client pages on).
MAX_PAGE = 1000
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
    """``POST api/v1/auth/login``: a new Bearer token for valid credentials, else 403; 429
    while axes has this username locked from this address (``det`` prints the message)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        body = LoginSerializer(data=json_body(request))
        body.is_valid(raise_exception=True)
        data = body.validated_data
        # axes reads Django's request (DRF's would parse the body as a form for its log).
        user = det_login(request._request, data["username"], data["password"], data["isHashed"])
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
            policy = Policy.from_mapping(values, fallback=experiment.gc_policy)
        except InvalidPolicy as exc:
            camel = {snake: camel for camel, snake in POLICY_NAMES.items()}[exc.field]
            raise ValidationError({f"checkpointStorage.{camel}": [str(exc)]}) from None
        runs.set_gc_policy(experiment, policy)
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
                if checkpoint.state in GONE_STATES:
                    continue
                runs.delete_checkpoint(checkpoint)
        return Response({})


class CheckpointsRemoveFilesView(DetView):
    """``POST api/v1/checkpoints/rm {checkpointUuids, checkpointGlobs}``: partial deletion.

    Each checkpoint with files matching the globs gets a FILES run
    (``experiments.gc.files.delete_files``); checkpoints where nothing matches are
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
                globs = check_globs(globs)
                matching = [c for c in checkpoints if matching_files(c.resources, globs)]
                for checkpoint in matching or checkpoints[:1]:
                    files.delete_files(checkpoint, globs)
            except GlobError as exc:  # Determined's name for the field
                raise ValidationError({"checkpointGlobs": [str(exc)]}) from None
        return Response({})


class CheckpointDownloadView(DetView):
    """``GET checkpoints/{uuid}``: the checkpoint as a streamed gzip'd tar (no seeking).

    The client untars ``response.raw`` front to back, so the body is a tgz (``Content-Type:
    application/gzip``, no ``Content-Encoding``), streamed by ckptweb's own archive code.
    """

    def get(self, request, uuid):
        checkpoint = get_checkpoint(uuid)
        downloads.ensure_downloadable(checkpoint)
        archive = downloads.checkpoint_archive(checkpoint)
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
            policy = Policy.from_mapping(request.query_params, fallback=experiment.gc_policy)
        except InvalidPolicy as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        preview = gc_preview(experiment, policy, page_size=1)
        ids = preview.deleted_ids
        running = {trial.checkpoint_id for trial in preview.running_trials}
        doomed = sorted(
            (c for part in chunked(ids) for c in checkpoints_queryset().filter(pk__in=part)),
            key=lambda c: (c.trial_id, c.id),
        )
        metrics = translate.validation_metrics(doomed)
        rows = [
            translate.preview_gc_row(c, m, running=c.pk in running)
            for c, m in zip(doomed, metrics, strict=True)
        ]
        return Response({"checkpoints": rows, "metric_name": experiment.searcher_metric})
