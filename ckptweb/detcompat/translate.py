"""ckptweb rows in Determined's REST shapes (``v1Checkpoint``, ``v1Experiment``, ``v1User``).

Pure translation: values come from the models and from ckptweb's services (retention for
the GC preview); nothing here decides what is kept, allowed or deleted. Determined's
proto-JSON conventions are followed: camelCase keys, ``STATE_*`` enums, RFC 3339 times,
int64 values (``resources`` sizes) as strings.
"""

from __future__ import annotations

import copy

from experiments import services
from experiments.choices import (
    EXPERIMENT_TERMINAL_STATES,
    TRIAL_TERMINAL_STATES,
    CheckpointState,
    ExperimentState,
)
from experiments.models import Checkpoint, Experiment
from storage.backends import BACKENDS
from storage.models import url_credentials

#: ckptweb checkpoint state -> Determined's; DELETING (files being removed) has no
#: Determined counterpart and shows as the nearest one, STATE_PARTIALLY_DELETED.
CHECKPOINT_STATES = {
    CheckpointState.COMPLETED: "STATE_COMPLETED",
    CheckpointState.PARTIALLY_DELETED: "STATE_PARTIALLY_DELETED",
    CheckpointState.DELETING: "STATE_PARTIALLY_DELETED",
    CheckpointState.DELETED: "STATE_DELETED",
    CheckpointState.ERROR: "STATE_ERROR",
}
#: Determined's ``states=`` filter values -> the ckptweb states they select.
CHECKPOINT_STATE_FILTERS: dict[str, list[str]] = {}
for _ours, _theirs in CHECKPOINT_STATES.items():
    CHECKPOINT_STATE_FILTERS.setdefault(_theirs, []).append(_ours.value)

EXPERIMENT_STATES = {state: f"STATE_{state.value}" for state in ExperimentState}


#: A trial's task id is this and its id: the Core API ties checkpoints and logs to their
#: trial by it (``training.trial_of_task``).
TASK_PREFIX = "trial-"


def rfc3339(moment) -> str | None:
    """A datetime as Determined's JSON spells it (``...Z``)."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def user_json(user) -> dict:
    """A ``v1User``: ``admin`` is staff."""
    return {
        "id": user.pk,
        "username": user.get_username(),
        "displayName": user.get_full_name() or user.get_username(),
        "admin": bool(user.is_staff),
        "active": bool(user.is_active),
        "remote": False,
    }


def checkpoint_storage(experiment: Experiment) -> dict:
    """The experiment's ``checkpoint_storage`` section without any secret.

    Only the backend's non-sensitive parameters are given (never ``access_key`` or
    ``secret_key``), and a URL parameter carrying credentials (``endpoint_url`` userinfo,
    a SAS query in ``account_url``) is left out, so a Determined client reading storage
    directly uses its own credentials.
    """
    storage = experiment.storage
    backend = BACKENDS.get(storage.type)
    section: dict = {"type": storage.type}
    if backend is not None:
        for name in backend.parameters:
            value = getattr(storage, name, "")
            if name in backend.sensitive_parameters or not value:
                continue
            if name in backend.url_parameters and url_credentials(value):
                continue  # userinfo, or a SAS query in an Azure account_url
            section[name] = value
    section.update(experiment.gc_policy.as_dict())
    return section


def experiment_config(experiment: Experiment) -> dict:
    """The experiment config as Determined reads it: searcher metric and storage included."""
    config = copy.deepcopy(experiment.config) if isinstance(experiment.config, dict) else {}
    searcher = config.get("searcher") if isinstance(config.get("searcher"), dict) else {}
    config["searcher"] = {
        **searcher,
        "metric": experiment.searcher_metric,
        "smaller_is_better": experiment.smaller_is_better,
    }
    config["checkpoint_storage"] = checkpoint_storage(experiment)
    config.setdefault("name", experiment.name)
    return config


def validation_metrics(checkpoints) -> list[dict | None]:
    """The metrics of each checkpoint's latest validation at its step (None where there is
    none), in the checkpoints' order: ``experiments.services.latest_validations``, which
    fetches one row per (trial, step) however many reports share it.
    """
    return [v.metrics if v else None for v in services.latest_validations(checkpoints)]


def checkpoint_json(checkpoint: Checkpoint, config: dict, metrics: dict | None) -> dict:
    """A ``v1Checkpoint``; ``metadata`` always carries ``steps_completed`` (never empty)."""
    user_metadata = checkpoint.metadata if isinstance(checkpoint.metadata, dict) else {}
    hparams = checkpoint.trial.hparams if isinstance(checkpoint.trial.hparams, dict) else {}
    return {
        "uuid": str(checkpoint.uuid),
        "taskId": f"{TASK_PREFIX}{checkpoint.trial_id}",
        "allocationId": "",
        "reportTime": rfc3339(checkpoint.report_time),
        "resources": {path: str(size) for path, size in sorted(checkpoint.resources.items())},
        "metadata": {**user_metadata, "steps_completed": checkpoint.steps_completed},
        "state": CHECKPOINT_STATES.get(checkpoint.state, "STATE_UNSPECIFIED"),
        "storageId": checkpoint.experiment.storage_id,
        "training": {
            "trialId": checkpoint.trial_id,
            "experimentId": checkpoint.experiment_id,
            "experimentConfig": config,
            "hparams": hparams,
            "validationMetrics": {"avgMetrics": metrics} if metrics else None,
            "searcherMetric": checkpoint.validation_metric,
        },
    }


def checkpoints_json(checkpoints: list[Checkpoint]) -> list[dict]:
    """``v1Checkpoint``s of checkpoints (with ``trial`` and ``experiment`` selected)."""
    configs: dict[int, dict] = {}
    result = []
    for checkpoint, metrics in zip(checkpoints, validation_metrics(checkpoints), strict=True):
        if checkpoint.experiment_id not in configs:
            configs[checkpoint.experiment_id] = experiment_config(checkpoint.experiment)
        result.append(checkpoint_json(checkpoint, configs[checkpoint.experiment_id], metrics))
    return result


def experiment_json(experiment: Experiment) -> dict:
    """A ``v1Experiment`` (the fields the SDK requires, plus name, owner, state, labels,
    notes and archived); ``endTime`` is the last change of an ended experiment.
    ``num_trials``, where a list annotated it, saves a count per experiment."""
    config = experiment_config(experiment)
    ended = experiment.state in EXPERIMENT_TERMINAL_STATES
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "description": experiment.description,
        "archived": experiment.archived,
        "config": config,
        "originalConfig": experiment.config_yaml,
        "jobId": "",
        "numTrials": (
            experiment.num_trials
            if hasattr(experiment, "num_trials")
            else experiment.trials.count()
        ),
        "projectId": 1,
        "projectOwnerId": 1,
        "workspaceId": 1,
        "searcherType": "custom",
        "searcherMetric": experiment.searcher_metric,
        "startTime": rfc3339(experiment.created_at),
        "state": EXPERIMENT_STATES.get(experiment.state, "STATE_UNSPECIFIED"),
        "username": experiment.owner.get_username(),
        "userId": experiment.owner_id,
        "labels": list(experiment.labels or []),
        "notes": experiment.notes,
        "endTime": rfc3339(experiment.updated_at) if ended else None,
        "resourcePool": "",
        "projectName": "Uncategorized",
        "workspaceName": "Uncategorized",
    }


def preview_gc_row(checkpoint: Checkpoint, metrics: dict | None, running: bool = False) -> dict:
    """One row of Determined's ``preview_gc`` answer (a checkpoint the policy deletes).

    ``step.validation`` is truthy only for validated checkpoints: the CLI lists those in
    its table and counts the others. ``running``: the checkpoint is the latest of a trial
    still running (``GCPreview.running_trials``); its State says so, and it is listed even
    without a validation (its metric cell empty), so ``det experiment set gc-policy`` names
    every running trial it would cut off; the CLI then counts it "with validations".
    """
    state = CHECKPOINT_STATES.get(checkpoint.state, "STATE_UNSPECIFIED")
    if running:
        state = f"{state} (latest of running trial {checkpoint.trial_id})"
    return {
        "TrialID": checkpoint.trial_id,
        "ReportTime": rfc3339(checkpoint.report_time),
        "StepsCompleted": checkpoint.steps_completed,
        "State": state,
        "UUID": str(checkpoint.uuid),
        "Resources": {path: size for path, size in sorted(checkpoint.resources.items())},
        "ValidationMetrics": metrics or {},
        "step": {"validation": {"metrics": metrics or {}}} if metrics or running else {},
    }


def metrics_workload(validation, steps: int | None = None) -> dict:
    """A ``v1MetricsWorkload`` of a validation."""
    return {
        "totalBatches": validation.steps_completed if steps is None else steps,
        "metrics": {"avgMetrics": validation.metrics},
        "numInputs": 0,
        "endTime": rfc3339(validation.report_time),
    }


def checkpoint_workload(checkpoint: Checkpoint) -> dict:
    """A ``v1CheckpointWorkload``."""
    user_metadata = checkpoint.metadata if isinstance(checkpoint.metadata, dict) else {}
    return {
        "uuid": str(checkpoint.uuid),
        "totalBatches": checkpoint.steps_completed,
        "state": CHECKPOINT_STATES.get(checkpoint.state, "STATE_UNSPECIFIED"),
        "endTime": rfc3339(checkpoint.report_time),
        "resources": {path: str(size) for path, size in sorted(checkpoint.resources.items())},
        "metadata": {**user_metadata, "steps_completed": checkpoint.steps_completed},
    }


def trial_json(trial, facts: dict) -> dict:
    """A ``trialv1Trial``; ``facts`` (``detcompat.views.trial_facts``) holds its numbers:
    batches, checkpoint count and bytes, latest and best validation, best checkpoint."""
    latest, best = facts.get("latest"), facts.get("best")
    searcher = trial.experiment.searcher_metric
    summary = {}
    if latest is not None:
        summary = {
            "validation_metrics": {
                name: {"last": value, "type": "number"} for name, value in latest.metrics.items()
            }
        }
    ended = trial.state in TRIAL_TERMINAL_STATES
    return {
        "id": trial.pk,
        "experimentId": trial.experiment_id,
        "startTime": rfc3339(trial.created_at),
        "endTime": rfc3339(facts.get("last_report")) if ended else None,
        "state": f"STATE_{trial.state}",
        "restarts": 0,
        "hparams": trial.hparams if isinstance(trial.hparams, dict) else {},
        "totalBatchesProcessed": facts.get("batches", 0),
        "checkpointCount": facts.get("checkpoints", 0),
        "totalCheckpointSize": str(facts.get("bytes", 0)),
        "taskId": f"{TASK_PREFIX}{trial.pk}",
        "taskIds": [f"{TASK_PREFIX}{trial.pk}"],
        "latestValidation": metrics_workload(latest) if latest is not None else None,
        "bestValidation": metrics_workload(best) if best is not None else None,
        "bestCheckpoint": (
            checkpoint_workload(facts["best_checkpoint"])
            if facts.get("best_checkpoint") is not None
            else None
        ),
        "searcherMetricValue": best.metrics.get(searcher) if best is not None else None,
        "summaryMetrics": summary,
        "metadata": {},
        "wallClockTime": None,
        "runnerState": "",
    }
