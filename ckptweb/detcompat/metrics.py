"""Determined's metric reads: ``trial.iter_metrics(group)``, ``iter_trials_metrics``,
``stream_trials_validation_metrics``/``stream_trials_training_metrics`` and
``checkpoint.get_metrics()``.

The three ``GET api/v1/trials/metrics/{trial,validation,training}_metrics?trialIds=…`` routes
stream newline-delimited ``{"result": {"metrics": [v1MetricsReport, …]}}`` lines, as
Determined's gRPC gateway does, ``CHUNK`` reports a line, read from the database in chunks
so memory stays flat at any number of reports. Group ``validation`` is ckptweb's
validations (their metrics under ``validation_metrics``, the key the SDK reads for that
group); any other group is that group's ``TrialMetrics`` (under ``avg_metrics``). Reports
come by trial, then steps, then report order. Any signed-in user reads (ckptweb's rule).

``checkpoints/{uuid}/metrics`` is, in Determined, the metrics of the *inference* trials that
named the checkpoint as their source (``report_trial_source_info``). ckptweb records no
such trials, so the answer is the empty list Determined gives a checkpoint no trial was
evaluated with (after the checkpoint's own 404 and the group's check).
"""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ckptweb.detcompat.base import DetView, get_checkpoint
from ckptweb.detcompat.translate import rfc3339
from experiments import services
from experiments.models import Trial, TrialMetrics, Validation

#: Reports in one streamed line.
CHUNK = 500
#: Most trials one request names.
MAX_TRIALS = 1000


def report_json(row, group: str) -> dict:
    """A ``v1MetricsReport`` of a Validation or TrialMetrics row."""
    key = "validation_metrics" if group == services.VALIDATION_GROUP else "avg_metrics"
    return {
        "id": row.pk,
        "trialId": row.trial_id,
        "trialRunId": 1,
        "totalBatches": row.steps_completed,
        "endTime": rfc3339(row.report_time),
        "metrics": {key: row.metrics},
        "group": group,
        "archived": False,
    }


def trial_ids(request) -> list[int]:
    """``trialIds`` (repeated), each an existing trial: a 400 naming the parameter if not."""
    values = request.query_params.getlist("trialIds")
    if not values or len(values) > MAX_TRIALS:
        raise ValidationError({"trialIds": [f"name 1 to {MAX_TRIALS:,} trials."]})
    if not all(v.isdigit() and len(v) <= 18 for v in values):
        raise ValidationError({"trialIds": ["must be trial ids."]})
    ids = list(dict.fromkeys(int(v) for v in values))
    found = set(Trial.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError({"trialIds": [f"trial {missing[0]} not found."]})
    return ids


def stream_reports(ids: list[int], group: str) -> StreamingHttpResponse:
    """The reports of ``group`` of trials ``ids`` as newline-delimited result lines."""
    if group == services.VALIDATION_GROUP:
        rows = Validation.objects.filter(trial_id__in=ids)
    else:
        rows = TrialMetrics.objects.filter(trial_id__in=ids, group=group)
    rows = rows.order_by("trial_id", "steps_completed", "id")

    def lines():
        chunk = []
        for row in rows.iterator(chunk_size=CHUNK):
            chunk.append(report_json(row, group))
            if len(chunk) == CHUNK:
                yield json.dumps({"result": {"metrics": chunk}}) + "\n"
                chunk = []
        if chunk:
            yield json.dumps({"result": {"metrics": chunk}}) + "\n"

    return StreamingHttpResponse(lines(), content_type="application/json")


class TrialsMetricsView(DetView):
    """``GET api/v1/trials/metrics/trial_metrics?trialIds=&group=``: any group's reports."""

    def get(self, request):
        ids = trial_ids(request)
        group = request.query_params.get("group") or ""
        if group != services.VALIDATION_GROUP:
            try:
                services.check_group(group)
            except services.ReportError as exc:
                raise ValidationError({"group": [exc.message]}) from None
        return stream_reports(ids, group)


class TrialsValidationMetricsView(DetView):
    """``GET api/v1/trials/metrics/validation_metrics?trialIds=``: the validations."""

    def get(self, request):
        return stream_reports(trial_ids(request), services.VALIDATION_GROUP)


class TrialsTrainingMetricsView(DetView):
    """``GET api/v1/trials/metrics/training_metrics?trialIds=``: the ``training`` group."""

    def get(self, request):
        return stream_reports(trial_ids(request), "training")


class CheckpointMetricsView(DetView):
    """``GET api/v1/checkpoints/{uuid}/metrics``: inference trials' metrics (none here)."""

    def get(self, request, uuid):
        get_checkpoint(uuid)
        return Response({"metrics": []})
