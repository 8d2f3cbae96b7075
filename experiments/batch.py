"""Batch ingest: up to ``MAX_BATCH`` checkpoint, validation or other metrics reports of one
trial at once.

docs/architecture.md "Scale contract". Every item meets the rules of a single report (the same
``experiments.services`` checks: ``new_checkpoint``, ``check_metrics``), and every refusal
is collected under the item's index, so one answer names all the bad items. The batch is
one transaction: one bad item stores nothing.

Queries do not grow with the batch: a checkpoint batch reads the existing uuids once and
the trial's validations at the batch's steps once, then inserts with one ``bulk_create``;
a validation batch inserts with one ``bulk_create`` and gives its metrics to the
checkpoints at its steps with one ``UPDATE … CASE``. Either order of reporting links a
checkpoint to the latest validation at its step, as for single reports.
"""

from __future__ import annotations

import json
import uuid as uuid_lib
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, FloatField, Value, When
from django.db.models.functions import Cast

from ckptweb.lib.limits import InvalidInput
from experiments import services, summary
from experiments.models import Checkpoint, Trial, TrialMetrics, Validation

MAX_BATCH = 1000


class BatchError(Exception):
    """Refused items of a batch: ``errors`` maps an item's index to ``{field: [message]}``."""

    def __init__(self, errors: Mapping[int, Mapping[str, list[str]]]):
        self.errors = dict(sorted(errors.items()))
        index, fields = next(iter(self.errors.items()))
        field, messages = next(iter(fields.items()))
        while isinstance(messages, Mapping):  # a field's parts: {"resources": {"a": [...]}}
            part, messages = next(iter(messages.items()))
            field = f"{field}[{part!r}]"
        self.message = f"items[{index}].{field}: {messages[0]}"
        super().__init__(self.message)


def check_batch_size(items: Sequence) -> None:
    """A batch has 1 to ``MAX_BATCH`` items (InvalidInput naming ``items`` otherwise)."""
    if not items:
        raise InvalidInput("items", "items must hold at least one report.")
    if len(items) > MAX_BATCH:
        raise InvalidInput(
            "items", f"items holds {len(items):,} reports; a batch holds at most {MAX_BATCH:,}."
        )


def _refusal(errors: dict, index: int, exc: InvalidInput) -> None:
    field = exc.field.split(".", 1)[0].split("[", 1)[0]
    errors.setdefault(index, {}).setdefault(field, []).append(exc.message)


def checked_checkpoints(
    trial: Trial, items: Sequence[Mapping], walked: bool = False
) -> list[Checkpoint]:
    """Unsaved checkpoints of ``items`` (each ``{steps_completed, resources?, metadata?,
    uuid?}``), or BatchError naming every refused item by index. ``walked``: the items
    came through the API's parser, which checked every JSON value in them."""
    check_batch_size(items)
    errors: dict[int, dict[str, list[str]]] = {}
    checkpoints: list[Checkpoint] = []
    first_of: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            checkpoint = services.new_checkpoint(trial, **item, walked=walked)
        except InvalidInput as exc:
            _refusal(errors, index, exc)
            continue
        key = str(checkpoint.uuid)
        if key in first_of:
            message = f"uuid {key} is also items[{first_of[key]}]'s."
            errors.setdefault(index, {}).setdefault("uuid", []).append(message)
        first_of.setdefault(key, index)
        checkpoints.append(checkpoint)
    existing = Checkpoint.objects.filter(uuid__in=[c.uuid for c in checkpoints])
    for uuid in existing.values_list("uuid", flat=True):
        _refusal(errors, first_of[str(uuid)], services.duplicate_uuid(uuid))
    if errors:
        raise BatchError(errors)
    return checkpoints


def link_validations(trial: Trial, checkpoints: Sequence[Checkpoint]) -> None:
    """Give unsaved ``checkpoints`` the searcher metric of the latest validation at their step."""
    for checkpoint, validation in zip(
        checkpoints, services.latest_validations(checkpoints), strict=True
    ):
        if validation is not None:
            metric = services.searcher_metric_of(trial.experiment, validation.metrics)
            checkpoint.validation_metric = metric


def report_checkpoints(
    trial: Trial, items: Sequence[Mapping], walked: bool = False
) -> list[Checkpoint]:
    """Record ``items`` as checkpoints of ``trial`` in one transaction; all or none.

    A uuid taken by a concurrent report between the check and the insert is refused by
    the unique index; the check then runs again and names it.
    """
    trial.experiment.ensure_not_deleting()
    try:
        with transaction.atomic():
            checkpoints = checked_checkpoints(trial, items, walked)
            link_validations(trial, checkpoints)
            created = insert_checkpoints(checkpoints)
            summary.added_checkpoints(trial.experiment, created)
            return created
    except IntegrityError:
        checked_checkpoints(trial, items, walked)
        raise


def insert_checkpoints(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    """INSERT unsaved ``checkpoints`` in one statement; their ids set, as ``bulk_create``.

    On PostgreSQL the rows travel as one JSON document that ``jsonb_to_recordset`` expands
    (each column typed as the model's field): ``bulk_create`` sends one array per column,
    and psycopg builds those arrays in Python, escaping every JSON value again, which cost
    more CPU than PostgreSQL's own work on the INSERT (docs/PERFORMANCE.md, issue 26).
    Elsewhere, and for a value JSON cannot carry, ``bulk_create`` (Django splits it where
    SQLite's parameter limit bites).
    """
    if connection.vendor != "postgresql":
        return Checkpoint.objects.bulk_create(checkpoints)
    fields = [f for f in Checkpoint._meta.concrete_fields if not f.primary_key]
    try:
        document = json.dumps(
            [{f.column: f.pre_save(c, True) for f in fields} for c in checkpoints],
            allow_nan=False,
            default=_json_value,
        )
    except (TypeError, ValueError):
        return Checkpoint.objects.bulk_create(checkpoints)
    quote = connection.ops.quote_name
    table = quote(Checkpoint._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    record = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}) RETURNING id, uuid"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [document])
        ids = {str(uuid): pk for pk, uuid in cursor.fetchall()}
    for checkpoint in checkpoints:
        checkpoint.pk = ids[str(uuid_lib.UUID(str(checkpoint.uuid)))]
        checkpoint._state.adding = False
        checkpoint._state.db = connection.alias
    return checkpoints


def _json_value(value):
    """The JSON form of the field values ``json`` does not know (uuid, datetime)."""
    if isinstance(value, uuid_lib.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def check_all_metrics(items: Sequence[Mapping], walked: bool = False) -> None:
    """Every item's ``metrics`` within the limits (``services.check_metrics``), else one
    BatchError naming each refused item."""
    errors: dict[int, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        try:
            services.check_metrics(item["metrics"], walked)
        except InvalidInput as exc:
            _refusal(errors, index, exc)
    if errors:
        raise BatchError(errors)


@transaction.atomic
def report_validations(
    trial: Trial, items: Sequence[Mapping], walked: bool = False
) -> list[Validation]:
    """Record ``items`` (each ``{steps_completed, metrics}``) as validations of ``trial``.

    All or none; checkpoints at their steps get the searcher metric of the latest one.
    ``walked``: as ``checked_checkpoints``'.
    """
    trial.experiment.ensure_not_deleting()
    check_batch_size(items)
    check_all_metrics(items, walked)
    validations = Validation.objects.bulk_create(
        [Validation(trial=trial, **item) for item in items]
    )
    metric_at = {
        item["steps_completed"]: services.searcher_metric_of(trial.experiment, item["metrics"])
        for item in items  # in order: the latest report at a step wins
    }
    # Cast: a CASE whose branches are all NULL (no searcher metric) is text to PostgreSQL.
    whens = [When(steps_completed=step, then=Value(m)) for step, m in metric_at.items()]
    at_steps = Checkpoint.objects.filter(trial=trial, steps_completed__in=list(metric_at))
    if at_steps.update(
        validation_metric=Cast(Case(*whens, output_field=FloatField()), FloatField())
    ):
        linked = set(at_steps.values_list("steps_completed", flat=True).distinct())
        summary.metrics_linked(trial.experiment, [m for s, m in metric_at.items() if s in linked])
    return validations


@transaction.atomic
def report_metrics(
    trial: Trial, group: str, items: Sequence[Mapping], walked: bool = False
) -> list[TrialMetrics]:
    """Record ``items`` (each ``{steps_completed, metrics}``) as ``group`` metrics of ``trial``.

    The one writer of ``TrialMetrics`` (DESIGN.md "Metrics groups"): bounded as validations
    (``check_batch_size``, ``services.check_metrics``), all or none, one ``bulk_create``.
    Retention never reads these rows, so no checkpoint changes. ``walked``: as
    ``checked_checkpoints``'.
    """
    trial.experiment.ensure_not_deleting()
    services.check_group(group)
    check_batch_size(items)
    check_all_metrics(items, walked)
    return TrialMetrics.objects.bulk_create(
        [
            TrialMetrics(
                trial=trial,
                group=group,
                steps_completed=item["steps_completed"],
                metrics=item["metrics"],
            )
            for item in items
        ]
    )
