"""Business logic of experiments: creating and reporting, policies, starting GC runs.

Views, viewsets, commands and tasks call these functions and stay thin.
"""

from __future__ import annotations

import math
import re
import uuid as uuid_lib
from collections.abc import Iterator, Sequence

import yaml
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery

from ckptweb.audit.models import Action
from ckptweb.audit.record import listed, record
from ckptweb.lib.db import chunked, in_chunk_size
from ckptweb.lib.errors import Conflict
from ckptweb.lib.limits import (
    MAX_INT,
    MAX_PATH_LENGTH,
    MAX_RESOURCES,
    InvalidInput,
    check_json,
    check_size,
    check_text,
    printable,
)
from ckptweb.lib.paths import UnsafePath, check_relative_path
from ckptweb.lib.policy import POLICY_FIELDS
from experiments import summary
from experiments.choices import (
    EXPERIMENT_TERMINAL_STATES,
    GONE_STATES,
    TRIAL_RUNNING_STATES,
    TRIAL_TERMINAL_STATES,
    CheckpointState,
    ExperimentState,
    GCReason,
    TrialState,
)
from experiments.config import parse_experiment_config
from experiments.gc.runs import start_gc_run
from experiments.models import (
    Checkpoint,
    Experiment,
    GCRun,
    Trial,
    Validation,
)
from storage.config import ConfigError
from storage.services import storage_for_spec


class ReportError(InvalidInput):
    """Bad reported data; ``field`` names the offending field."""


def _storable(value, field: str, **limits):
    """``value`` checked by ``ckptweb.lib.limits.check_json``, its refusal as a ReportError."""
    try:
        return check_json(value, field, **limits)
    except InvalidInput as exc:
        raise ReportError(exc.field, exc.message) from None


@transaction.atomic
def create_experiment(
    owner, config, name: str | None = None, may_add_storage: bool = True
) -> Experiment:
    """Create an experiment from a config (YAML text or mapping). Raises ConfigError.

    ``may_add_storage``: whether a ``checkpoint_storage`` naming a location that no
    StorageConfig has yet may add one (the API allows it for staff only).
    """
    parsed = parse_experiment_config(config)
    name = (name or "").strip() or parsed.name
    if not name:
        raise ConfigError("name", "name is required (in the request or the config).")
    if len(name) > 255:
        raise ConfigError("name", "name must be at most 255 characters.")
    try:
        storage = storage_for_spec(parsed.storage, may_add=may_add_storage)
    except InvalidInput as exc:
        raise ConfigError(exc.field, exc.message) from None
    redacted = parsed.redacted()
    experiment = Experiment.objects.create(
        name=name,
        description=parsed.description,
        owner=owner,
        config=redacted,
        config_yaml=yaml.safe_dump(redacted, sort_keys=False),
        searcher_metric=parsed.metric,
        smaller_is_better=parsed.smaller_is_better,
        storage=storage,
        **{field: parsed.storage.policy.get(field) for field in POLICY_FIELDS},
    )
    summary.created(experiment)
    return experiment


def create_trial(experiment: Experiment, hparams: dict | None = None) -> Trial:
    """Add a trial to ``experiment``."""
    experiment.ensure_not_deleting()
    if hparams is not None and not isinstance(hparams, dict):
        raise ReportError("hparams", "hparams must be a JSON object.")
    _storable(hparams, "hparams")
    return Trial.objects.create(experiment=experiment, hparams=hparams or {})


def check_metrics(metrics, walked: bool = False) -> dict:
    """Validation metrics must be a mapping of names to finite numbers."""
    if not isinstance(metrics, dict) or not metrics:
        raise ReportError("metrics", "metrics must be a non-empty object of name: number.")
    _storable(metrics, "metrics", walked=walked)
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            shown = printable(name)
            raise ReportError("metrics", f"metrics.{shown} must be a number, not {value!r}.")
        if not math.isfinite(value):
            raise ReportError("metrics", f"metrics.{printable(name)} must be finite.")
    return metrics


def check_resources(resources, walked: bool = False) -> dict[str, int]:
    """Resources map safe relative paths to non-negative integer sizes."""
    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise ReportError("resources", "resources must be an object of path: bytes.")
    if len(resources) > MAX_RESOURCES:
        raise ReportError("resources", f"resources has more than {MAX_RESOURCES:,} files.")
    clean = {}
    total = 0
    _storable(resources, "resources", walked=walked, max_bytes=None)  # bounded by MAX_RESOURCES
    for path, size in resources.items():
        if len(path) > MAX_PATH_LENGTH:
            raise ReportError(
                "resources", f"resources paths are at most {MAX_PATH_LENGTH} characters."
            )
        try:
            normalised = check_relative_path(path)
        except UnsafePath as exc:
            raise ReportError("resources", f"resources path {printable(path)!r}: {exc}.") from None
        try:
            total += check_size(size, f"resources[{printable(normalised)!r}]")
        except InvalidInput as exc:
            raise ReportError("resources", exc.message) from None
        clean[normalised] = size
    if total > MAX_INT:
        raise ReportError("resources", "resources add up to more than 2**63 - 1 bytes.")
    return clean


def check_metadata(metadata, walked: bool = False) -> dict:
    """User metadata must be a storable JSON object (``ckptweb.lib.limits``: at most 1 MiB)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ReportError("metadata", "metadata must be a JSON object.")
    return _storable(metadata, "metadata", walked=walked)


def searcher_metric_of(experiment: Experiment, metrics: dict) -> float | None:
    """The experiment's searcher metric in ``metrics`` as a float; None when absent."""
    value = metrics.get(experiment.searcher_metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def report_validation(trial: Trial, steps_completed: int, metrics: dict) -> Validation:
    """Record a validation and give its searcher metric to checkpoints at the same step.

    The latest validation reported at a step wins, whether the checkpoint came first or not.
    """
    trial.experiment.ensure_not_deleting()
    check_metrics(metrics)
    with transaction.atomic():
        validation = Validation.objects.create(
            trial=trial, steps_completed=steps_completed, metrics=metrics
        )
        metric = searcher_metric_of(trial.experiment, metrics)
        at_step = Checkpoint.objects.filter(trial=trial, steps_completed=steps_completed)
        linked = at_step.update(validation_metric=metric)
        summary.metrics_linked(trial.experiment, [metric] * linked)
    return validation


#: The group of ``report_validation``: the one retention reads (DESIGN.md "Metrics groups").
VALIDATION_GROUP = "validation"
#: A group name: a letter or digit, then letters, digits, ``_``, ``.`` or ``-``.
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_group(group) -> str:
    """A metrics group other than validations: 1 to 64 of ``[A-Za-z0-9_.-]``, not ``validation``."""
    if not isinstance(group, str) or not GROUP_NAME.fullmatch(group):
        raise ReportError(
            "group", "group must be 1 to 64 letters, digits, '_', '.' or '-' (e.g. training)."
        )
    if group == VALIDATION_GROUP:
        raise ReportError(
            "group", "validations are reported to trials/{id}/validations (retention reads them)."
        )
    return group


#: Most ``trial_id = … AND steps_completed IN (…)`` terms one statement ORs together: SQLite
#: refuses an expression tree deeper than 1,000 levels, and each OR adds one.
MAX_TRIAL_TERMS = 200


def latest_at_step(validations: QuerySet) -> QuerySet:
    """``validations`` narrowed to the latest report at each (trial, step): the rule in SQL.

    Each row is kept only if no later report of its trial shares its step (a correlated
    probe of ``validation_step_idx``), so a step reported fifty times yields one row and
    the database reads the metrics of that one only.
    """
    newest = (
        Validation.objects.filter(
            trial_id=OuterRef("trial_id"), steps_completed=OuterRef("steps_completed")
        )
        .order_by("-id")
        .values("id")[:1]
    )
    return validations.filter(id=Subquery(newest))


def _at_checkpoint_steps(checkpoints: Sequence[Checkpoint]) -> Iterator[Q]:
    """Conditions that select the validations at exactly the checkpoints' (trial, step)
    pairs, never another pairing of their trials and steps: an OR of one ``trial_id = t AND
    steps_completed IN (…)`` per trial, each within the connection's parameter limit and
    at most ``MAX_TRIAL_TERMS`` terms."""
    steps: dict[int, set[int]] = {}
    for checkpoint in checkpoints:
        steps.setdefault(checkpoint.trial_id, set()).add(checkpoint.steps_completed)
    budget = in_chunk_size()  # parameters a statement may bind (None: any number)
    terms: list[Q] = []
    used = 0
    for trial_id, of_trial in sorted(steps.items()):
        for part in chunked(sorted(of_trial), None if budget is None else max(1, budget - 1)):
            full = budget is not None and used + 1 + len(part) > budget
            if terms and (full or len(terms) == MAX_TRIAL_TERMS):
                yield Q(*terms, _connector=Q.OR)
                terms, used = [], 0
            terms.append(Q(trial_id=trial_id, steps_completed__in=part))
            used += 1 + len(part)
    if terms:
        yield Q(*terms, _connector=Q.OR)


def latest_validations(checkpoints: Sequence[Checkpoint]) -> list[Validation | None]:
    """The latest validation reported at each checkpoint's step, in the checkpoints' order.

    None where the checkpoint's trial reported none at its step. The database returns one
    row per (trial, step) asked for, however many reports share it (``latest_at_step``):
    one query for up to ``MAX_TRIAL_TERMS`` trials (more only past that or SQLite's
    parameter limit; none for none). The checkpoints may be unsaved.
    """
    latest: dict[tuple[int, int], Validation] = {}
    for at_steps in _at_checkpoint_steps(checkpoints):
        for validation in latest_at_step(Validation.objects.filter(at_steps)).order_by():
            latest[(validation.trial_id, validation.steps_completed)] = validation
    return [latest.get((c.trial_id, c.steps_completed)) for c in checkpoints]


def latest_validation(checkpoint: Checkpoint) -> Validation | None:
    """The latest validation reported at ``checkpoint``'s step, or None (one query)."""
    return latest_validations([checkpoint])[0]


def link_validation(checkpoint: Checkpoint) -> None:
    """Set ``checkpoint.validation_metric`` from the trial's latest validation at its step."""
    validation = latest_validation(checkpoint)
    metric = None
    if validation is not None:
        metric = searcher_metric_of(checkpoint.trial.experiment, validation.metrics)
    if checkpoint.validation_metric != metric:
        checkpoint.validation_metric = metric
        if checkpoint.pk:
            Checkpoint.objects.filter(pk=checkpoint.pk).update(validation_metric=metric)


def new_checkpoint(
    trial: Trial,
    steps_completed: int,
    resources: dict | None = None,
    metadata: dict | None = None,
    uuid: str | uuid_lib.UUID | None = None,
    walked: bool = False,
) -> Checkpoint:
    """An unsaved checkpoint of ``trial`` with its resources and metadata checked.

    The checks of every report (single or batch); the uuid's uniqueness and the
    validation link are the callers' (they differ in how many they do at once).
    ``walked``: the API's parser checked the values (``ckptweb.lib.limits.check_json``).
    """
    resources = check_resources(resources, walked)
    metadata = check_metadata(metadata, walked)
    return Checkpoint(
        uuid=uuid_lib.uuid4() if uuid is None else uuid,
        trial=trial,
        experiment_id=trial.experiment_id,
        steps_completed=steps_completed,
        resources=resources,
        size_bytes=sum(resources.values()),
        metadata=metadata,
    )


def duplicate_uuid(uuid) -> ReportError:
    """The refusal of a reported uuid that a checkpoint already has."""
    return ReportError("uuid", f"a checkpoint with uuid {uuid} already exists.")


def report_checkpoint(
    trial: Trial,
    steps_completed: int,
    resources: dict | None = None,
    metadata: dict | None = None,
    uuid: str | uuid_lib.UUID | None = None,
    walked: bool = False,
) -> Checkpoint:
    """Record a checkpoint whose files are already on the experiment's storage.

    One transaction (link, insert); a uuid already taken is found by the unique index,
    not by a query before every insert. ``walked``: as ``new_checkpoint``'s.
    """
    trial.experiment.ensure_not_deleting()
    checkpoint = new_checkpoint(trial, steps_completed, resources, metadata, uuid, walked)
    try:
        with transaction.atomic():
            link_validation(checkpoint)
            checkpoint.save()
            summary.added_checkpoints(trial.experiment, [checkpoint])
    except IntegrityError:
        if Checkpoint.objects.filter(uuid=checkpoint.uuid).exists():
            raise duplicate_uuid(checkpoint.uuid) from None
        raise
    return checkpoint


# --- policies and GC -----------------------------------------------------------------------


@transaction.atomic
def set_experiment_state(experiment: Experiment, state: str) -> GCRun | None:
    """Change the state; reaching a terminal state starts a GC run.

    Ending an experiment ends its trials still running in the same state (an experiment
    COMPLETED by hand completes them): an ended experiment's trials never change again, so
    one left ACTIVE would stay so for good.
    """
    experiment.ensure_not_deleting()
    if state == ExperimentState.DELETING:
        raise ReportError("state", "use DELETE to delete an experiment.")
    previous = experiment.state
    experiment.state = state
    experiment.save(update_fields=["state", "updated_at"])
    if state in EXPERIMENT_TERMINAL_STATES and previous not in EXPERIMENT_TERMINAL_STATES:
        experiment.trials.filter(state__in=TRIAL_RUNNING_STATES).update(state=state)
        return start_gc_run(experiment, GCReason.EXPERIMENT_TERMINAL)
    return None


# --- experiments: the lifecycle fields (the one writer) -------------------------------------

#: Most labels on one experiment, and the longest label (DESIGN.md "Limits and bad input").
MAX_LABELS = 100
MAX_LABEL_LENGTH = 255
#: Longest experiment name (the column's) and description or notes (100,000 characters).
MAX_NAME_LENGTH = 255
MAX_TEXT_LENGTH = 100_000


def check_labels(labels) -> list[str]:
    """``labels`` as stored: a list of non-blank strings, each at most MAX_LABEL_LENGTH,
    at most MAX_LABELS of them; duplicates dropped, order kept (ReportError naming labels)."""
    if not isinstance(labels, list | tuple):
        raise ReportError("labels", "labels must be a list of strings.")
    checked: list[str] = []
    for label in labels:
        try:
            text = check_text(label, "labels", MAX_LABEL_LENGTH).strip()
        except InvalidInput as exc:
            raise ReportError("labels", f"each label: {exc.message}") from None
        if not text:
            raise ReportError("labels", "a label must not be blank.")
        if text not in checked:
            checked.append(text)
    if len(checked) > MAX_LABELS:
        raise ReportError("labels", f"at most {MAX_LABELS} labels, not {len(checked)}.")
    return checked


def _checked_text(value, field: str, max_length: int) -> str:
    try:
        return check_text(value, field, max_length)
    except InvalidInput as exc:
        raise ReportError(field, exc.message) from None


@transaction.atomic
def update_experiment(
    experiment: Experiment,
    *,
    name: str | None = None,
    description: str | None = None,
    labels: list | None = None,
    notes: str | None = None,
    archived: bool | None = None,
) -> Experiment:
    """Set the given lifecycle fields of ``experiment`` (None leaves a field as it is).

    The one writer of name, description, labels, notes and archived after creation: the
    API's PATCH, the pages and ``/det-compat/`` call it. Bad values are a ReportError naming
    the field (nothing changed); an experiment being deleted does not change (Conflict).
    ``experiment`` is updated in place.
    """
    values: dict = {}
    if name is not None:
        name = _checked_text(name, "name", MAX_NAME_LENGTH).strip()
        if not name:
            raise ReportError("name", "name must not be blank.")
        values["name"] = name
    if description is not None:
        values["description"] = _checked_text(description, "description", MAX_TEXT_LENGTH)
    if notes is not None:
        values["notes"] = _checked_text(notes, "notes", MAX_TEXT_LENGTH)
    if labels is not None:
        values["labels"] = check_labels(labels)
    if archived is not None:
        if not isinstance(archived, bool):
            raise ReportError("archived", "archived must be true or false.")
        values["archived"] = archived
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    locked.ensure_not_deleting()
    if values:
        for field, value in values.items():
            setattr(experiment, field, value)
        experiment.save(update_fields=[*values, "updated_at"])
    return experiment


def add_labels(experiment: Experiment, labels: list) -> Experiment:
    """Add ``labels`` to the experiment's (``update_experiment``'s limits)."""
    with transaction.atomic():
        current = Experiment.objects.select_for_update().get(pk=experiment.pk).labels or []
        return update_experiment(experiment, labels=[*current, *check_labels(labels)])


def remove_labels(experiment: Experiment, labels: list) -> Experiment:
    """Remove ``labels`` from the experiment's; ones it does not carry are ignored."""
    with transaction.atomic():
        current = Experiment.objects.select_for_update().get(pk=experiment.pk).labels or []
        gone = set(check_labels(labels))
        return update_experiment(experiment, labels=[x for x in current if x not in gone])


# --- trials: the lifecycle (the one writer of a trial's state) ------------------------------


def experiment_end_state(trial_states) -> ExperimentState:
    """The state an experiment ends in once none of its trials runs, from its trials' states.

    COMPLETED if any trial COMPLETED (one finished trial gives checkpoints worth the policy's
    keeping, whatever its siblings did), else CANCELED if any was CANCELED, else ERROR.
    """
    states = set(trial_states)
    if TrialState.COMPLETED in states:
        return ExperimentState.COMPLETED
    if TrialState.CANCELED in states:
        return ExperimentState.CANCELED
    return ExperimentState.ERROR


@transaction.atomic
def set_trial_state(trial: Trial, state: str) -> GCRun | None:
    """Move ``trial`` along TrialState's machine; the last trial to end ends the experiment.

    ACTIVE <-> PAUSED, and ACTIVE | PAUSED -> COMPLETED | CANCELED | ERROR; an ended trial
    never changes again (Conflict), nor does any trial of an experiment being deleted or
    already ended. Under the experiment's row lock, so of two trials ending at once exactly
    one sees that no trial runs any more: it ends the experiment (``experiment_end_state``)
    through ``set_experiment_state``, which starts the GC run that applies the policy, and
    that run is returned (else None). ``trial`` is updated in place.
    """
    if state not in TrialState.values:
        allowed = ", ".join(TrialState.values)
        raise ReportError(
            "state", f"state must be one of {allowed}, not {printable(str(state))!r}."
        )
    experiment = Experiment.objects.select_for_update().get(pk=trial.experiment_id)
    experiment.ensure_not_deleting()
    if experiment.state in EXPERIMENT_TERMINAL_STATES:
        raise Conflict(
            f"experiment {experiment.pk} is {experiment.state}: its trials can no longer change.",
            code="experiment_ended",
        )
    current = Trial.objects.filter(pk=trial.pk).values_list("state", flat=True).get()
    if current in TRIAL_TERMINAL_STATES:
        raise Conflict(
            f"trial {trial.pk} is already {current}: an ended trial cannot change.",
            code="trial_ended",
        )
    trial.experiment = experiment
    trial.state = state
    if state == current:
        return None
    Trial.objects.filter(pk=trial.pk).update(state=state)
    if state not in TRIAL_TERMINAL_STATES:
        return None
    states = set(Trial.objects.filter(experiment=experiment).values_list("state", flat=True))
    if states & set(TRIAL_RUNNING_STATES):
        return None
    return set_experiment_state(experiment, experiment_end_state(states))


# --- checkpoints: protection and metadata (the one writer) ----------------------------------


def _set_protected(experiment_id: int, ids: list[int], protected: bool) -> tuple[int, list[str]]:
    """Flip ``protected`` on checkpoints ``ids`` of one experiment; (changed, refusals).

    The caller holds the experiment's row lock, which GC's claim also takes, so a claim
    cannot interleave. A checkpoint whose files are gone or going (``GONE_STATES``: a GC run
    holds it, or it is DELETED) is not protected: the UPDATE's WHERE leaves it, and the
    refusal says why (naming the run). Protecting a DELETED checkpoint answered 200 and the
    page said "garbage collection will keep it" about files that no longer exist.
    """
    rows = Checkpoint.objects.filter(pk__in=ids).exclude(protected=protected)
    if protected:
        rows = rows.exclude(state__in=GONE_STATES)
    uuids = list(rows.values_list("uuid", flat=True))  # under the experiment's row lock
    changed = rows.update(protected=protected)
    summary.protection_changed(experiment_id, changed, protected)
    if uuids:
        owner_id = Experiment.objects.values_list("owner_id", flat=True).get(pk=experiment_id)
        action = Action.CHECKPOINT_PROTECT if protected else Action.CHECKPOINT_UNPROTECT
        target = str(uuids[0]) if len(uuids) == 1 else f"{len(uuids)} checkpoints"
        after = {"protected": protected, "checkpoints": listed(uuids)}
        record(
            action,
            "checkpoint",
            target,
            experiment_id=experiment_id,
            owner_id=owner_id,
            before={"protected": not protected},
            after=after,
        )
    refused = []
    if protected:
        gone = Checkpoint.objects.filter(
            pk__in=ids, protected=False, state__in=GONE_STATES
        ).values_list("uuid", "state", "gc_run_id")
        refused = [
            f"checkpoint {uuid} is being deleted by GC run {run_id}; it can no longer be protected."
            if state == CheckpointState.DELETING
            else f"checkpoint {uuid} is DELETED: its files are gone, there is nothing to protect."
            for uuid, state, run_id in gone
        ]
    return changed, refused


@transaction.atomic
def set_protected(checkpoints: list[Checkpoint], protected: bool) -> tuple[int, list[str]]:
    """Protect (or unprotect) ``checkpoints``: (how many changed, why others were refused).

    Per experiment, under its row lock: nothing changes in an experiment being deleted, and
    a checkpoint a GC run holds cannot be protected. Used by the bulk action; the API, the
    checkpoint page and ``/det-compat/`` go through ``update_checkpoint``.
    """
    by_experiment: dict[int, list[int]] = {}
    for checkpoint in checkpoints:
        by_experiment.setdefault(checkpoint.experiment_id, []).append(checkpoint.pk)
    changed, refused = 0, []
    for experiment_id, ids in sorted(by_experiment.items()):
        experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
        try:
            experiment.ensure_not_deleting()
        except Conflict as exc:
            refused.append(exc.message)
            continue
        flipped, held = _set_protected(experiment_id, ids, protected)
        changed += flipped
        refused += held
    return changed, refused


@transaction.atomic
def update_checkpoint(
    checkpoint: Checkpoint, *, protected: bool | None = None, metadata: dict | None = None
) -> Checkpoint:
    """Set ``protected`` and/or replace ``metadata`` of one checkpoint; Conflict if refused.

    Refused (nothing changed) while its experiment is being deleted, and protecting while a
    GC run holds the checkpoint (the message names the run). ``metadata`` must have passed
    ``check_metadata``.
    """
    experiment = Experiment.objects.select_for_update().get(pk=checkpoint.experiment_id)
    experiment.ensure_not_deleting()
    if protected is not None:
        _, refused = _set_protected(experiment.pk, [checkpoint.pk], protected)
        if refused:
            raise Conflict(refused[0], code="checkpoint_deleting")
        checkpoint.protected = protected
    if metadata is not None:
        Checkpoint.objects.filter(pk=checkpoint.pk).update(metadata=metadata)
        checkpoint.metadata = metadata
    return checkpoint


__all__ = [
    "CheckpointState",
    "ReportError",
    "create_experiment",
    "create_trial",
    "set_protected",
    "update_checkpoint",
    "update_experiment",
    "add_labels",
    "remove_labels",
    "check_labels",
    "latest_at_step",
    "latest_validation",
    "latest_validations",
    "link_validation",
    "new_checkpoint",
    "report_checkpoint",
    "report_validation",
    "set_experiment_state",
    "set_trial_state",
]
