"""The ``/det-compat/`` routes: Determined's REST calls, answered by ckptweb's services.

Each view parses Determined's request (JSON whatever the Content-Type, camelCase names),
calls the same service or rule ckptweb's own API calls, and answers in Determined's shape
(``translate``) with status 200. Errors keep their ckptweb status (400 naming the field,
401, 403 with the permission message, 404, 409, 410) in Determined's error body.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, FloatField, Max, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from rest_framework import serializers
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
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
    get_trial,
    int_param,
    json_body,
    metric_name,
    metric_value,
)
from ckptweb.lib.db import chunked
from ckptweb.lib.limits import printable
from ckptweb.lib.policy import InvalidPolicy, Policy
from experiments import downloads, services
from experiments.api.downloads import logged
from experiments.choices import GONE_STATES, ExperimentState, TrialState
from experiments.filters import with_label
from experiments.gc import files, runs
from experiments.gc.globs import GlobError, check_globs, matching_files
from experiments.gc.preview import gc_preview
from experiments.models import Checkpoint, Experiment, Trial, Validation
from experiments.services import latest_at_step

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
    """``GET``/``PATCH``/``DELETE api/v1/experiments/{id}``."""

    def get(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        body = translate.experiment_json(experiment)
        return Response({"experiment": body, "config": body["config"]})

    def patch(self, request, experiment_id):
        """Name, description, labels and notes (``services.update_experiment``) and/or the
        GC policy (``checkpointStorage.save*``, ``runs.set_gc_policy``). Determined's CLI
        sends the whole experiment back with one field changed; unchanged values are no-ops."""
        experiment = get_experiment(experiment_id)
        ensure_may_change(request, experiment)
        data = json_body(request)
        unknown = sorted(set(data) - {"id", "checkpointStorage", *LIFECYCLE_FIELDS})
        if unknown:
            raise ValidationError(
                {
                    unknown[0]: [
                        "cannot be changed here: name, description, labels, notes and "
                        "checkpointStorage (the GC policy) can."
                    ]
                }
            )
        changes = {field: data[field] for field in LIFECYCLE_FIELDS if data.get(field) is not None}
        if "name" in changes and changes["name"] == experiment.name:
            del changes["name"]
        policy = None
        if data.get("checkpointStorage") is not None:
            policy = self.policy(experiment, data["checkpointStorage"])
        if changes:
            services.update_experiment(experiment, **changes)
        if policy is not None:
            runs.set_gc_policy(experiment, policy)
        experiment.refresh_from_db()
        return Response({"experiment": translate.experiment_json(experiment)})

    @staticmethod
    def policy(experiment: Experiment, section) -> Policy:
        """The GC policy of ``checkpointStorage`` (its missing values: the current ones)."""
        if not isinstance(section, dict):
            raise ValidationError({"checkpointStorage": ["must be an object of save* numbers."]})
        extra = sorted(set(section) - set(POLICY_NAMES))
        if extra:
            raise ValidationError({f"checkpointStorage.{extra[0]}": ["cannot be changed."]})
        values = {POLICY_NAMES[name]: value for name, value in section.items()}
        try:
            return Policy.from_mapping(values, fallback=experiment.gc_policy)
        except InvalidPolicy as exc:
            camel = {snake: camel for camel, snake in POLICY_NAMES.items()}[exc.field]
            raise ValidationError({f"checkpointStorage.{camel}": [str(exc)]}) from None

    def delete(self, request, experiment_id):
        """Deletes the experiment through ckptweb's deletion run (files, then rows)."""
        experiment = get_experiment(experiment_id)
        ensure_may_change(request, experiment)
        runs.delete_experiment(experiment)
        return Response({})


class CheckpointListView(DetView):
    """A page of checkpoints: sortByAttr or sortByMetric, orderBy, limit, offset, states.

    ``SORT_BY_SEARCHER_METRIC`` lists validated checkpoints only, best first (the SDK's
    default "best" list); ``sortByMetric`` sorts by any validation metric of the latest
    validation at each checkpoint's step, nulls last whatever the order (as Determined).
    """

    def scope(self, **kwargs) -> tuple[Experiment, QuerySet]:
        raise NotImplementedError

    def get(self, request, **kwargs):
        experiment, queryset = self.scope(**kwargs)
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
        queryset = ordered_checkpoints(request, experiment, queryset)
        total = queryset.count()
        offset = int_param(request, "offset", 0, minimum=None)
        if offset < 0:
            offset = max(total + offset, 0)
        limit = int_param(request, "limit", 0) or MAX_PAGE
        rows = list(queryset[offset : offset + min(limit, MAX_PAGE)])
        return Response(
            {
                "checkpoints": translate.checkpoints_json(rows),
                "pagination": pagination(offset, limit, len(rows), total),
            }
        )


def pagination(offset: int, limit: int, count: int, total: int) -> dict:
    """A ``v1Pagination`` of one page (the client pages on while endIndex < total)."""
    return {
        "offset": offset,
        "limit": limit,
        "startIndex": offset,
        "endIndex": offset + count,
        "total": total,
    }


def order_param(request) -> str:
    order = request.query_params.get("orderBy") or "ORDER_BY_UNSPECIFIED"
    if order not in ("ORDER_BY_UNSPECIFIED", "ORDER_BY_ASC", "ORDER_BY_DESC"):
        raise ValidationError({"orderBy": [f"unknown order {order[:40]!r}."]})
    return order


def ordered_checkpoints(request, experiment: Experiment, queryset: QuerySet) -> QuerySet:
    """``queryset`` in the order of Determined's sortByAttr/sortByMetric and orderBy."""
    sort = request.query_params.get("sortByAttr") or "SORT_BY_UNSPECIFIED"
    metric = request.query_params.get("sortByMetric")
    order = order_param(request)
    # Ties as retention breaks them: smaller steps_completed, then smaller id.
    ties = ["steps_completed", "id"]
    if metric:
        metric = metric_name(metric)
        ascending = order != "ORDER_BY_DESC"
        if order == "ORDER_BY_UNSPECIFIED" and metric == experiment.searcher_metric:
            ascending = experiment.smaller_is_better
        if metric == experiment.searcher_metric:
            value = F("validation_metric")
        else:
            queryset = queryset.annotate(sort_metric=metric_value(metric))
            value = F("sort_metric")
        first = value.asc(nulls_last=True) if ascending else value.desc(nulls_last=True)
        return queryset.order_by(first, *ties)
    if sort == "SORT_BY_SEARCHER_METRIC":
        ascending = experiment.smaller_is_better
        if order != "ORDER_BY_UNSPECIFIED":
            ascending = order == "ORDER_BY_ASC"
        queryset = queryset.exclude(validation_metric__isnull=True)  # "best" needs one
        return queryset.order_by(("" if ascending else "-") + "validation_metric", *ties)
    if sort not in SORTS and sort != "SORT_BY_UNSPECIFIED":
        raise ValidationError({"sortByAttr": [f"unknown sort {sort[:40]!r}."]})
    field = SORTS.get(sort, "report_time")
    sign = "-" if order == "ORDER_BY_DESC" else ""
    return queryset.order_by(sign + field, sign + "id")


class ExperimentCheckpointsView(CheckpointListView):
    """``GET api/v1/experiments/{id}/checkpoints``."""

    def scope(self, experiment_id):
        experiment = get_experiment(experiment_id)
        return experiment, checkpoints_queryset().filter(experiment=experiment)


class TrialCheckpointsView(CheckpointListView):
    """``GET api/v1/trials/{id}/checkpoints``."""

    def scope(self, trial_id):
        trial = get_trial(trial_id)
        return trial.experiment, checkpoints_queryset().filter(trial=trial)


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
    left alone, and if nothing matches anywhere the answer is 200 with nothing done (as
    Determined answers). An empty
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
                for checkpoint in matching:
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


#: Fields of Determined's PatchExperiment that ``services.update_experiment`` writes.
LIFECYCLE_FIELDS = ("name", "description", "labels", "notes")
#: Most experiments or users in one page, and trials (each costs a few queries) in one
#: page; the client pages on.
MAX_LIST_PAGE = 1000
MAX_TRIAL_PAGE = 100
EXPERIMENT_SORTS = {
    "SORT_BY_UNSPECIFIED": "id",
    "SORT_BY_ID": "id",
    "SORT_BY_DESCRIPTION": "description",
    "SORT_BY_START_TIME": "created_at",
    "SORT_BY_END_TIME": "updated_at",
    "SORT_BY_STATE": "state",
    "SORT_BY_USER": "owner__username",
    "SORT_BY_NAME": "name",
}
TRIAL_SORTS = {
    "SORT_BY_UNSPECIFIED": "id",
    "SORT_BY_ID": "id",
    "SORT_BY_START_TIME": "created_at",
    "SORT_BY_STATE": "state",
}
STATE_NAMES = {f"STATE_{state.value}": state.value for state in ExperimentState}
TRIAL_STATE_NAMES = {f"STATE_{state.value}": state.value for state in TrialState}


def page_bounds(request, most: int = MAX_LIST_PAGE) -> tuple[int, int]:
    offset = int_param(request, "offset", 0)
    limit = int_param(request, "limit", 0) or most
    return offset, min(limit, most)


def sorted_by(request, sorts: dict[str, str], queryset: QuerySet) -> QuerySet:
    sort = request.query_params.get("sortBy") or "SORT_BY_UNSPECIFIED"
    if sort not in sorts:
        raise ValidationError({"sortBy": [f"unsupported sort {sort[:40]!r}."]})
    sign = "-" if order_param(request) == "ORDER_BY_DESC" else ""
    return queryset.order_by(sign + sorts[sort], sign + "id")


def states_filter(request, names: dict[str, str]) -> list[str] | None:
    states = request.query_params.getlist("states")
    if not states:
        return None
    for state in states:
        if state not in names:
            raise ValidationError({"states": [f"unknown state {state[:40]!r}."]})
    return [names[state] for state in states]


class ExperimentsView(DetView):
    """``GET api/v1/experiments``: archived, users, userIds, labels, name, states, sortBy,
    orderBy, offset, limit (the filters of ckptweb's ``GET experiments``)."""

    def get(self, request):
        params = request.query_params
        queryset = Experiment.objects.select_related("storage", "owner").annotate(
            num_trials=Count("trials", distinct=True)
        )
        archived = params.get("archived")
        if archived not in (None, ""):
            if archived not in ("true", "false"):
                raise ValidationError({"archived": ["must be true or false."]})
            queryset = queryset.filter(archived=archived == "true")
        users = params.getlist("users")
        if users:
            queryset = queryset.filter(owner__username__in=users)
        user_ids = [int_param_value("userIds", text) for text in params.getlist("userIds")]
        if user_ids:
            queryset = queryset.filter(owner_id__in=user_ids)
        for label in params.getlist("labels"):
            queryset = with_label(queryset, metric_name(label, "labels"))
        if params.get("name"):
            queryset = queryset.filter(name__icontains=metric_name(params["name"], "name"))
        states = states_filter(request, STATE_NAMES)
        if states is not None:
            queryset = queryset.filter(state__in=states)
        queryset = sorted_by(request, EXPERIMENT_SORTS, queryset)
        total = queryset.count()
        offset, limit = page_bounds(request)
        rows = list(queryset[offset : offset + limit])
        return Response(
            {
                "experiments": [translate.experiment_json(e) for e in rows],
                "pagination": pagination(offset, limit, len(rows), total),
            }
        )


def int_param_value(name: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", text or ""):
        raise ValidationError({name: [f"must be an integer, not {printable(text or '')!r}."]})
    return int(text)


class ExperimentArchiveView(DetView):
    """``POST api/v1/experiments/{id}/archive`` and ``.../unarchive``."""

    archived = True

    def post(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        ensure_may_change(request, experiment)
        services.update_experiment(experiment, archived=self.archived)
        return Response({})


class ExperimentUnarchiveView(ExperimentArchiveView):
    archived = False


class ExperimentLabelView(DetView):
    """``PUT``/``DELETE api/v1/experiments/{id}/labels/{label}``: the labels after."""

    def put(self, request, experiment_id, label):
        experiment = get_experiment(experiment_id)
        ensure_may_change(request, experiment)
        services.add_labels(experiment, [label])
        return Response({"labels": experiment.labels})

    def delete(self, request, experiment_id, label):
        experiment = get_experiment(experiment_id)
        ensure_may_change(request, experiment)
        services.remove_labels(experiment, [label])
        return Response({"labels": experiment.labels})


def trial_facts(trial: Trial) -> dict:
    """The numbers of a ``trialv1Trial``: checkpoints (count, bytes, last report, best by
    the searcher metric), validations (latest, best by the searcher metric) and batches."""
    experiment = trial.experiment
    checkpoints = Checkpoint.objects.filter(trial=trial).aggregate(
        count=Count("id"),
        bytes=Sum("size_bytes"),
        steps=Max("steps_completed"),
        last=Max("report_time"),
    )
    validations = trial.validations.aggregate(steps=Max("steps_completed"), last=Max("report_time"))
    latest = trial.validations.order_by("-steps_completed", "-id").first()
    value = Cast(KeyTextTransform(experiment.searcher_metric, "metrics"), FloatField())
    ranked = latest_at_step(trial.validations.all()).annotate(value=value).exclude(value=None)
    first = F("value").asc() if experiment.smaller_is_better else F("value").desc()
    best = ranked.order_by(first, "steps_completed", "id").first()
    sign = "" if experiment.smaller_is_better else "-"
    best_checkpoint = (
        Checkpoint.objects.filter(trial=trial, validation_metric__isnull=False)
        .order_by(sign + "validation_metric", "steps_completed", "id")
        .first()
    )
    reports = [t for t in (checkpoints["last"], validations["last"]) if t is not None]
    return {
        "checkpoints": checkpoints["count"] or 0,
        "bytes": checkpoints["bytes"] or 0,
        "batches": max(checkpoints["steps"] or 0, validations["steps"] or 0),
        "last_report": max(reports) if reports else None,
        "latest": latest,
        "best": best,
        "best_checkpoint": best_checkpoint,
    }


class ExperimentTrialsView(DetView):
    """``GET api/v1/experiments/{id}/trials``: states, sortBy, orderBy, offset, limit."""

    def get(self, request, experiment_id):
        experiment = get_experiment(experiment_id)
        queryset = Trial.objects.filter(experiment=experiment)
        states = states_filter(request, TRIAL_STATE_NAMES)
        if states is not None:
            queryset = queryset.filter(state__in=states)
        queryset = sorted_by(request, TRIAL_SORTS, queryset)
        total = queryset.count()
        offset, limit = page_bounds(request, MAX_TRIAL_PAGE)
        rows = list(queryset[offset : offset + limit])
        for trial in rows:
            trial.experiment = experiment
        return Response(
            {
                "trials": [translate.trial_json(t, trial_facts(t)) for t in rows],
                "pagination": pagination(offset, limit, len(rows), total),
            }
        )


class TrialView(DetView):
    """``GET api/v1/trials/{id}``."""

    def get(self, request, trial_id):
        trial = get_trial(trial_id)
        return Response({"trial": translate.trial_json(trial, trial_facts(trial))})


WORKLOAD_FILTERS = (
    "FILTER_OPTION_UNSPECIFIED",
    "FILTER_OPTION_CHECKPOINT",
    "FILTER_OPTION_VALIDATION",
    "FILTER_OPTION_CHECKPOINT_OR_VALIDATION",
)


class TrialWorkloadsView(DetView):
    """``GET api/v1/trials/{id}/workloads``: the trial's validations (the latest report at
    each step) and checkpoints, by steps; offset, limit, filter, orderBy."""

    def get(self, request, trial_id):
        trial = get_trial(trial_id)
        kind = request.query_params.get("filter") or "FILTER_OPTION_UNSPECIFIED"
        if kind not in WORKLOAD_FILTERS:
            raise ValidationError({"filter": [f"unknown filter {kind[:40]!r}."]})
        keys: list[tuple[int, int, str, int]] = []
        if kind != "FILTER_OPTION_CHECKPOINT":
            rows = latest_at_step(trial.validations.all()).values_list("steps_completed", "id")
            keys += [(steps, 1, "validation", pk) for steps, pk in rows]
        if kind != "FILTER_OPTION_VALIDATION":
            rows = Checkpoint.objects.filter(trial=trial).values_list("steps_completed", "id")
            keys += [(steps, 2, "checkpoint", pk) for steps, pk in rows]
        keys.sort(reverse=order_param(request) == "ORDER_BY_DESC")
        offset, limit = int_param(request, "offset", 0), int_param(request, "limit", 0)
        limit = min(limit or MAX_PAGE, MAX_PAGE)
        page = keys[offset : offset + limit]
        validations = Validation.objects.in_bulk([k[3] for k in page if k[2] == "validation"])
        checkpoints = Checkpoint.objects.in_bulk([k[3] for k in page if k[2] == "checkpoint"])
        workloads = []
        for _, _, what, pk in page:
            if what == "validation":
                workloads.append({"validation": translate.metrics_workload(validations[pk])})
            else:
                workloads.append({"checkpoint": translate.checkpoint_workload(checkpoints[pk])})
        return Response(
            {"workloads": workloads, "pagination": pagination(offset, limit, len(page), len(keys))}
        )


class CheckpointMetadataView(DetView):
    """``POST api/v1/checkpoints/{uuid}/metadata {checkpoint: {metadata}}``: replaces the
    user metadata (``services.update_checkpoint``). ``steps_completed``, which the reads add,
    is dropped when it repeats the checkpoint's own step."""

    def post(self, request, uuid):
        checkpoint = get_checkpoint(uuid)
        ensure_may_change(request, checkpoint)
        body = json_body(request).get("checkpoint")
        metadata = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(metadata, dict):
            raise ValidationError({"checkpoint.metadata": ["must be a JSON object."]})
        if metadata.get("steps_completed") == checkpoint.steps_completed:
            metadata = {k: v for k, v in metadata.items() if k != "steps_completed"}
        services.update_checkpoint(checkpoint, metadata=services.check_metadata(metadata))
        return Response({"checkpoint": translate.checkpoints_json([checkpoint])[0]})


class MasterView(DetView):
    """``GET api/v1/master``: what ``det master info`` prints (no configuration, no secret)."""

    def get(self, request):
        return Response(
            {
                "version": DET_VERSION,
                "masterId": "ckptweb",
                "clusterId": "ckptweb",
                "clusterName": "ckptweb",
                "telemetryEnabled": False,
                "hasCustomLogo": False,
                "strictJobQueueControl": False,
                "rbacEnabled": False,
                "userManagementEnabled": False,
                "product": "PRODUCT_UNSPECIFIED",
                "featureSwitches": [],
                "ssoProviders": [],
            }
        )


class UsersView(DetView):
    """``GET api/v1/users``: staff see every user, others only themselves; ``active``."""

    def get(self, request):
        users = get_user_model().objects.order_by("id")
        if not request.user.is_staff:
            users = users.filter(pk=request.user.pk)
        active = request.query_params.get("active")
        if active in ("true", "false"):
            users = users.filter(is_active=active == "true")
        total = users.count()
        offset, limit = page_bounds(request)
        rows = list(users[offset : offset + limit])
        return Response(
            {
                "users": [translate.user_json(user) for user in rows],
                "pagination": pagination(offset, limit, len(rows), total),
            }
        )


class NotServed(APIException):
    """501: a Determined route ckptweb does not implement."""

    status_code = 501
    default_code = "not_implemented"


class NotServedView(DetView):
    """Any other ``/det-compat/`` route: 501 in Determined's error shape, naming the method
    and route, so the client prints why instead of an empty reason (never an HTML 404)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def not_served(self, request, *args, **kwargs):
        route = printable(request.path, limit=200)
        raise NotServed(
            f"{request.method} {route}: ckptweb does not implement this Determined API route "
            "(see README, Coming from Determined)."
        )

    get = post = put = patch = delete = options = not_served
