"""Determined's Core API (``core_v2``, unmanaged; ``core.init`` where it shares the routes).

A training script on ``determined.experimental.core_v2`` reports to ckptweb as it would to a
Determined master. Its calls, in order (read from ``determined`` 0.38.1's
``experimental/core_v2/_unmanaged.py`` and ``core/``): ``POST api/v1/experiments {config,
unmanaged}``, ``POST api/v1/trials {experimentId, hparams, unmanaged}``, ``GET
api/v1/master``, ``POST api/v1/trials/{id}/start``, ``POST api/v1/runs/start``, ``PATCH
api/v1/trials/{id} {state}`` (RUNNING at start, a bare heartbeat every minute, COMPLETED or
ERROR at the end), ``POST api/v1/trials/{id}/metrics {group, metrics: {metrics: {avgMetrics},
stepsCompleted}}``, ``POST api/v1/checkpoints {uuid, resources, metadata, taskId, state}``
and ``POST task-logs [{task_id, log, timestamp}]``.

Each view translates to the experiments' own services, which decide:
``services.create_experiment`` / ``create_trial`` / ``set_trial_state`` (the last trial to
end ends the experiment, whose GC run applies the policy), ``services.report_validation``
(group ``validation``, the searcher metric retention reads), ``batch.report_metrics`` (any
other group), ``services.report_checkpoint`` and ``logs.append_trial_logs``. Permissions are
ckptweb's (the experiment's owner or staff report), as are the limits and errors.

Translations, not rules:

* ``checkpoint_storage: {type: directory, container_path: P}`` (what a path given to
  ``core_v2`` becomes off-cluster) is the ``shared_fs`` storage at ``host_path: P``: both put
  a checkpoint's files in ``P/<uuid>/``.
* A checkpoint names its trial only by ``taskId``: a trial's task id is
  ``TASK_PREFIX + trial id``; its step is ``metadata.steps_completed`` (the client
  requires it); ``resources`` sizes arrive as strings, and its directories (``code/``)
  are left out (ckptweb's resources are files).
* Determined's trial states map to ckptweb's: RUNNING and the other sub-states of active
  are ACTIVE; the STOPPING_* states are not ckptweb states (a 400 naming ``state``).
* Only unmanaged experiments: ckptweb runs no training (``unmanaged: false`` is a 400).
"""

from __future__ import annotations

import json
import re
import uuid as uuid_lib
from datetime import UTC, datetime

from django.db import transaction
from django.http import StreamingHttpResponse
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from ckptweb.detcompat import translate, views
from ckptweb.detcompat.base import (
    DetView,
    ensure_may_change,
    get_experiment,
    int_param,
    json_body,
    request_json,
)
from ckptweb.detcompat.views import CheckpointsView, trial_facts
from ckptweb.lib.limits import MAX_INT, InvalidInput
from experiments import batch, logs, services
from experiments.choices import CheckpointState, TrialState
from experiments.models import Trial
from storage.config import ConfigError, load_yaml

#: A trial's Determined task id is this prefix and the trial's id.
TASK_PREFIX = translate.TASK_PREFIX
#: Determined's trial states (``trialv1State``) as ckptweb's.
TRIAL_STATES_IN = {
    "STATE_ACTIVE": TrialState.ACTIVE,
    "STATE_QUEUED": TrialState.ACTIVE,
    "STATE_PULLING": TrialState.ACTIVE,
    "STATE_STARTING": TrialState.ACTIVE,
    "STATE_RUNNING": TrialState.ACTIVE,
    "STATE_PAUSED": TrialState.PAUSED,
    "STATE_COMPLETED": TrialState.COMPLETED,
    "STATE_CANCELED": TrialState.CANCELED,
    "STATE_ERROR": TrialState.ERROR,
}


def trial_json(trial: Trial) -> dict:
    """The trial as ``GET api/v1/trials/{id}`` answers it (``views.TrialView``)."""
    return translate.trial_json(trial, trial_facts(trial))


def get_trial(trial_id) -> Trial:
    """The trial, or a 404."""
    if not re.fullmatch(r"[0-9]{1,18}", str(trial_id)):
        raise NotFound(f"trial {str(trial_id)[:40]!r} not found.")
    trial = Trial.objects.select_related("experiment__owner").filter(pk=int(trial_id)).first()
    if trial is None:
        raise NotFound(f"trial {trial_id} not found.")
    return trial


def trial_of_task(value) -> Trial:
    """The trial whose task id is ``value`` (a 400 naming ``taskId`` for any other text)."""
    match = re.fullmatch(rf"{TASK_PREFIX}([0-9]{{1,18}})", value if isinstance(value, str) else "")
    if match is None:
        raise ValidationError({"taskId": [f"must be a ckptweb task id ({TASK_PREFIX}<trial id>)."]})
    return get_trial(match.group(1))


def number(data: dict, name: str) -> int:
    """A non-negative integer field of a JSON body (a 400 naming it)."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ValidationError({name: ["must be a non-negative integer."]})
    return value


def storage_section(config: dict) -> dict:
    """``config`` with Determined's ``directory`` storage as ckptweb's ``shared_fs``."""
    section = config.get("checkpoint_storage")
    if isinstance(section, dict) and section.get("type") == "directory":
        translated = {k: v for k, v in section.items() if k not in ("type", "container_path")}
        translated.update(type="shared_fs", host_path=section.get("container_path"))
        return {**config, "checkpoint_storage": translated}
    return config


class ExperimentsView(views.ExperimentsView):
    """``POST api/v1/experiments {config, unmanaged}``: an unmanaged experiment (besides
    the list it extends)."""

    def post(self, request):
        data = json_body(request)
        if data.get("unmanaged") is not True:
            raise ValidationError(
                {"unmanaged": ["ckptweb runs no training: only unmanaged experiments."]}
            )
        if not isinstance(data.get("config"), str):
            raise ValidationError({"config": ["must be the experiment config as YAML text."]})
        try:
            config = storage_section(load_yaml(data["config"]))
            experiment = services.create_experiment(
                request.user, config, may_add_storage=request.user.is_staff
            )
        except ConfigError as exc:
            raise ValidationError({"config": [str(exc)]}) from None
        body = translate.experiment_json(experiment)
        return Response({"experiment": body, "config": body["config"]})


class TrialsView(DetView):
    """``POST api/v1/trials {experimentId, hparams, unmanaged}``: a trial of the experiment."""

    def post(self, request):
        data = json_body(request)
        experiment = get_experiment(str(number(data, "experimentId")))
        ensure_may_change(request, experiment)
        trial = services.create_trial(experiment, data.get("hparams") or {})
        return Response({"trial": trial_json(trial)})


class TrialView(views.TrialView):
    """``PATCH api/v1/trials/{id} {state?}``: the heartbeat, and the trial's state (besides
    the read it extends)."""

    def patch(self, request, trial_id):
        trial = get_trial(trial_id)
        ensure_may_change(request, trial.experiment)
        data = json_body(request)
        state = data.get("state")
        if state is not None:
            if state not in TRIAL_STATES_IN:
                raise ValidationError(
                    {"state": [f"{str(state)[:40]!r} is not a state a ckptweb trial takes."]}
                )
            services.set_trial_state(trial, TRIAL_STATES_IN[state])
        trial.refresh_from_db()
        return Response({"trial": trial_json(trial)})


class TrialStartView(DetView):
    """``POST api/v1/trials/{id}/start``: where the trial resumes (its latest checkpoint)."""

    def post(self, request, trial_id):
        trial = get_trial(trial_id)
        ensure_may_change(request, trial.experiment)
        latest = (
            trial.checkpoints.filter(state=CheckpointState.COMPLETED)
            .order_by("-steps_completed", "-id")
            .first()
        )
        return Response(
            {
                "trialRunId": 1,
                "stepsCompleted": latest.steps_completed if latest else 0,
                "latestCheckpoint": str(latest.uuid) if latest else None,
            }
        )


class RunStartView(DetView):
    """``POST api/v1/runs/start {runId, checkpointStorage}``: the run's storage id."""

    def post(self, request):
        data = json_body(request)
        trial = get_trial(number(data, "runId"))
        ensure_may_change(request, trial.experiment)
        return Response({"storageId": trial.experiment.storage_id})


class TrialMetricsView(DetView):
    """``POST api/v1/trials/{id}/metrics {group, metrics: {metrics: {avgMetrics},
    stepsCompleted}}``: the averages are stored (``batchMetrics``, per-batch detail, is not).

    Group ``validation`` is a validation (its searcher metric reaches the checkpoints of its
    step, whichever came first); any other group is stored as that group's metrics.
    """

    def post(self, request, trial_id):
        trial = get_trial(trial_id)
        ensure_may_change(request, trial.experiment)
        data = json_body(request)
        report = data.get("metrics")
        if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
            raise ValidationError(
                {"metrics": ["must be a v1TrialMetrics with metrics.avgMetrics."]}
            )
        steps = number(report, "stepsCompleted")
        metrics = report["metrics"].get("avgMetrics")
        group = data.get("group")
        if group == services.VALIDATION_GROUP:
            services.report_validation(trial, steps, metrics)
        else:
            try:
                batch.report_metrics(trial, group, [{"steps_completed": steps, "metrics": metrics}])
            except batch.BatchError as exc:
                raise ValidationError(exc.errors[0]) from None
        return Response({})


class CheckpointsReportView(CheckpointsView):
    """``POST api/v1/checkpoints`` (a Core API checkpoint), besides the delete it extends."""

    def post(self, request):
        data = json_body(request)
        trial = trial_of_task(data.get("taskId"))
        ensure_may_change(request, trial.experiment)
        if data.get("state", "STATE_COMPLETED") != "STATE_COMPLETED":
            raise ValidationError({"state": ["only a COMPLETED checkpoint can be reported."]})
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValidationError({"metadata": ["must be a JSON object."]})
        steps = number(metadata, "steps_completed")
        resources = data.get("resources") or {}
        if not isinstance(resources, dict):
            raise ValidationError({"resources": ["must be an object of path: size."]})
        sizes = {}
        for path, size in resources.items():
            if not (isinstance(size, str) and size.isdigit()) and type(size) is not int:
                raise ValidationError({"resources": [f"the size of {path[:80]!r} is no integer."]})
            if not path.endswith("/"):  # Determined lists directories too ("code/": 0)
                sizes[path] = int(size)
        services.report_checkpoint(trial, steps, sizes, metadata, uuid=self.uuid_of(data))
        return Response({})

    @staticmethod
    def uuid_of(data: dict) -> uuid_lib.UUID:
        try:
            return uuid_lib.UUID(str(data.get("uuid")))
        except ValueError:
            raise ValidationError({"uuid": ["must be a UUID."]}) from None


class TrialLogsView(DetView):
    """``GET api/v1/trials/{id}/logs`` (``det trial logs``): the kept lines, streamed.

    ``limit`` with ``orderBy=ORDER_BY_DESC`` is ``--tail`` (the client reverses them),
    ``limit`` alone ``--head``; ``searchText`` keeps the lines containing it. ``follow``
    streams what is kept and ends (ckptweb does not hold requests open for new lines).
    Every line is ``LOG_LEVEL_INFO``: the shipper sends no level.
    """

    def get(self, request, trial_id):
        trial = get_trial(trial_id)
        limit = int_param(request, "limit", minimum=1)
        newest_first = request.query_params.get("orderBy") == "ORDER_BY_DESC"
        rows = trial.log_lines.order_by("-id" if newest_first else "id")
        search = request.query_params.get("searchText")
        if search:
            rows = rows.filter(line__contains=search[:200])
        if limit is not None:
            rows = rows[:limit]

        def lines():
            for row in rows.iterator(chunk_size=1000):
                moment = row.logged_at or row.received_at
                entry = {
                    "id": str(row.pk),
                    "trialId": trial.pk,
                    "level": "LOG_LEVEL_INFO",
                    "message": row.line + "\n",
                    "timestamp": translate.rfc3339(moment),
                }
                yield json.dumps({"result": entry}) + "\n"

        return StreamingHttpResponse(lines(), content_type="application/json")


class TaskLogsView(DetView):
    """``POST task-logs [{task_id, log, timestamp}, …]``: a trial's printed lines, kept bounded."""

    def post(self, request):
        entries = self.entries(request)
        by_trial: dict[str, list] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("log"), str):
                raise ValidationError({f"[{index}].log": ["must be a string."]})
            if not isinstance(entry.get("task_id"), str):
                raise ValidationError({f"[{index}].task_id": ["must be a task id."]})
            by_trial.setdefault(entry["task_id"], []).append(
                (entry["log"].rstrip("\n"), self.moment(entry.get("timestamp")))
            )
        trials = {key: trial_of_task(key) for key in by_trial}
        for trial in trials.values():
            ensure_may_change(request, trial.experiment)
        with transaction.atomic():
            for key, lines in by_trial.items():
                try:
                    logs.append_trial_logs(trials[key], lines)
                except InvalidInput as exc:
                    raise ValidationError({exc.field: [exc.message]}) from None
        return Response({})

    @staticmethod
    def entries(request) -> list:
        """The body: a JSON list of log entries (the only list body of the compat routes)."""
        data = request_json(request)
        if not isinstance(data, list):
            raise ValidationError({"body": ["must be a JSON list of log entries."]})
        if len(data) > logs.MAX_LINES:
            raise ValidationError({"body": [f"at most {logs.MAX_LINES:,} log lines a request."]})
        return data

    @staticmethod
    def moment(value) -> datetime | None:
        """When the line was logged (RFC 3339; UTC when it names no zone), else None."""
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment
