"""Model registry services: models, versions, and what registration pins.

A ModelVersion pins one checkpoint. The pin is what matters to every deleting path:

* ``experiments.gc.retention`` keeps a registered candidate under every policy (like
  ``protected``), so GC previews list it as kept with the reason ``registered as NAME vN``;
* ``experiments.gc.execute.claim_checkpoints`` never claims one, re-checked at claim time;
* deleting the checkpoint or its experiment is refused (409) naming the versions, and
  partial deletion calls ``registered_versions`` to refuse the same way.

**Concurrency.** ``register_version`` locks the checkpoint's experiment row (FOR NO KEY
UPDATE) before it checks the checkpoint's state, as a GC claim does before it decides what to
delete. The two are therefore serialized: a claim that ran first has made the checkpoint
DELETING (so the registration is refused), and a claim that runs after sees the version
(every statement of a READ COMMITTED transaction reads what was committed before it).
Version numbers come from ``Model.last_version``, incremented under the model's row lock, so
two registrations never get the same number and a deleted number is never reused.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import OuterRef, Prefetch, Q, Subquery

from ckptweb.audit.models import Action
from ckptweb.audit.record import listed, record
from ckptweb.lib import limits
from ckptweb.lib.errors import Conflict
from ckptweb.lib.limits import InvalidInput
from experiments.choices import CheckpointState, ExperimentState
from experiments.models import Checkpoint, Experiment
from experiments.models.registry import (
    LABEL_MAX_LENGTH,
    LABEL_PATTERN,
    MAX_LABELS,
    MODEL_NAME_MAX_LENGTH,
    MODEL_NAME_PATTERN,
    Model,
    ModelVersion,
    RetiredModelName,
)

MAX_DESCRIPTION_CHARS = 10_000
MAX_COMMENT_CHARS = 10_000
#: How many version labels a 409 message lists before "and N more".
MAX_NAMED_VERSIONS = 5
LATEST = "latest"


class RegistryError(InvalidInput):
    """Bad registry input (a 400); ``field`` names the offending field."""


class RegistryConflict(Conflict):
    """The request is valid but the current state forbids it (a 409): a taken name."""


# --- validation ----------------------------------------------------------------------------


def check_model_name(name) -> str:
    """A model name: 1-128 letters, digits, ``.``, ``_``, ``-``, not starting with a symbol."""
    if not isinstance(name, str) or not name:
        raise RegistryError("name", "name is required.")
    if len(name) > MODEL_NAME_MAX_LENGTH:
        raise RegistryError("name", f"name must be at most {MODEL_NAME_MAX_LENGTH} characters.")
    if not re.fullmatch(MODEL_NAME_PATTERN, name) or name == LATEST:
        raise RegistryError(
            "name",
            "name may contain only letters, digits, '.', '_' and '-', must start with a "
            f"letter or digit, and must not be {LATEST!r}; got {name[:40]!r}.",
        )
    return name


def check_labels(labels) -> list[str]:
    """Labels: a list of at most 32 distinct short strings (order kept, duplicates dropped)."""
    if labels is None:
        return []
    if not isinstance(labels, list | tuple):
        raise RegistryError("labels", "labels must be a list of strings.")
    clean: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label:
            raise RegistryError("labels", f"labels must be non-empty strings, not {label!r}.")
        if len(label) > LABEL_MAX_LENGTH:
            raise RegistryError(
                "labels", f"labels must be at most {LABEL_MAX_LENGTH} characters each."
            )
        if not re.fullmatch(LABEL_PATTERN, label):
            raise RegistryError(
                "labels",
                "labels may contain letters, digits and . _ : / = + - (no spaces or commas), "
                f"starting with a letter or digit; got {label[:40]!r}.",
            )
        if label not in clean:
            clean.append(label)
    if len(clean) > MAX_LABELS:
        raise RegistryError("labels", f"at most {MAX_LABELS} labels.")
    return clean


def check_text(field: str, value, limit: int) -> str:
    """Free text (description, comment): ``ckptweb.lib.limits.check_text`` within ``limit``."""
    if value is None:
        return ""
    try:
        return limits.check_text(value, field, max_length=limit)
    except InvalidInput as exc:
        raise RegistryError(exc.field, exc.message) from None


def parse_version(value) -> int | str:
    """``latest`` or a positive version number; RegistryError naming ``version`` otherwise."""
    text = str(value)
    if text == LATEST:
        return LATEST
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < 1:
        raise RegistryError("version", "version must be a positive integer or 'latest'.")
    return int(text)


# --- models --------------------------------------------------------------------------------


def create_model(owner, name, description=None, labels=None) -> Model:
    """Create a model owned by ``owner``; a taken name is a RegistryConflict."""
    name = check_model_name(name)
    description = check_text("description", description, MAX_DESCRIPTION_CHARS)
    labels = check_labels(labels)
    with transaction.atomic():
        if Model.objects.filter(name=name).exists():
            raise RegistryConflict(f"name: a model named {name!r} already exists.")
        retired = RetiredModelName.objects.select_for_update().filter(name=name).first()
        if retired is not None and retired.owner_id != owner.pk:
            raise RegistryConflict(
                f"name: {name!r} belonged to another user's deleted model; its versions must "
                "never come to mean other checkpoints, so choose another name."
            )
        last_version = retired.last_version if retired else 0
        model = Model.objects.create(
            name=name,
            description=description,
            labels=labels,
            owner=owner,
            last_version=last_version,
        )
        after = {"name": name, "description": description, "labels": labels}
        record(Action.MODEL_CREATE, "model", model.pk, owner_id=owner.pk, after=after)
        return model


def update_model(model: Model, description=None, labels=None) -> Model:
    """Change a model's description and/or labels (None leaves a field as it is)."""
    if description is not None:
        model.description = check_text("description", description, MAX_DESCRIPTION_CHARS)
    if labels is not None:
        model.labels = check_labels(labels)
    model.save()
    return model


@transaction.atomic
def delete_model(model: Model) -> None:
    """Delete a model and its versions; the checkpoints stay (and become GC-able again).

    Its name stays reserved to its owner (``RetiredModelName``), with the last version number.
    """
    locked = Model.objects.select_for_update().get(pk=model.pk)
    RetiredModelName.objects.update_or_create(
        name=locked.name,
        defaults={"owner_id": locked.owner_id, "last_version": locked.last_version},
    )
    versions = list(locked.versions.values_list("version", "checkpoint__uuid"))
    before = {
        "name": locked.name,
        "versions": listed(f"v{number} {uuid}" for number, uuid in versions),
    }
    record(Action.MODEL_DELETE, "model", locked.pk, owner_id=locked.owner_id, before=before)
    locked.delete()


# --- versions ------------------------------------------------------------------------------


def register_version(model: Model, checkpoint: Checkpoint, user, comment=None) -> ModelVersion:
    """Pin ``checkpoint`` as the next version of ``model``.

    Only a COMPLETED checkpoint of an experiment that is not being deleted can be
    registered (RegistryError naming ``checkpoint``). See the module docstring for why the
    experiment row is locked first.
    """
    comment = check_text("comment", comment, MAX_COMMENT_CHARS)
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update(no_key=True).get(
            pk=checkpoint.experiment_id
        )
        state = Checkpoint.objects.filter(pk=checkpoint.pk).values_list("state", flat=True).first()
        if experiment.state == ExperimentState.DELETING:
            raise RegistryError(
                "checkpoint", f"checkpoint {checkpoint.uuid}: its experiment is being deleted."
            )
        if state != CheckpointState.COMPLETED:
            raise RegistryError(
                "checkpoint",
                f"checkpoint {checkpoint.uuid} is {state}; only COMPLETED checkpoints "
                "can be registered.",
            )
        locked = Model.objects.select_for_update().get(pk=model.pk)
        locked.last_version += 1
        Model.objects.filter(pk=model.pk).update(last_version=locked.last_version)
        version = ModelVersion.objects.create(
            model=locked,
            version=locked.last_version,
            checkpoint=checkpoint,
            comment=comment,
            registered_by=user if user is not None and user.is_authenticated else None,
        )
        after = {
            "model": locked.name,
            "version": version.version,
            "checkpoint": str(checkpoint.uuid),
        }
        record(
            Action.VERSION_REGISTER,
            "model_version",
            f"{locked.name}:{version.version}",
            experiment_id=experiment.pk,
            owner_id=locked.owner_id,
            after=after,
        )
    model.last_version = locked.last_version
    return version


def get_version(model: Model, version) -> ModelVersion:
    """Version ``n`` or ``latest`` (the highest number) of ``model``; DoesNotExist if none."""
    number = parse_version(version)
    versions = ModelVersion.objects.filter(model=model).select_related(
        "model", "checkpoint__experiment__storage", "registered_by"
    )
    if number == LATEST:
        found = versions.order_by("-version").first()
        if found is None:
            raise ModelVersion.DoesNotExist(f"model {model.name} has no versions.")
        return found
    return versions.get(version=number)


@transaction.atomic
def delete_version(version: ModelVersion) -> None:
    """Remove a version: its checkpoint is no longer pinned by it."""
    model = version.model
    before = {
        "model": model.name,
        "version": version.version,
        "checkpoint": str(version.checkpoint.uuid),
    }
    record(
        Action.VERSION_DELETE,
        "model_version",
        f"{model.name}:{version.version}",
        experiment_id=version.checkpoint.experiment_id,
        owner_id=model.owner_id,
        before=before,
    )
    version.delete()


def latest_versions(models: Iterable[Model]) -> dict[int, ModelVersion]:
    """{model id: its highest version} for a page of models, in one query."""
    ids = [model.pk for model in models]
    if not ids:
        return {}
    highest = (
        ModelVersion.objects.filter(model=OuterRef("model"))
        .order_by("-version")
        .values("version")[:1]
    )
    rows = ModelVersion.objects.filter(model_id__in=ids, version=Subquery(highest)).select_related(
        "checkpoint", "model", "registered_by"
    )
    return {row.model_id: row for row in rows}


def search_models(queryset, text: str):
    """Models whose name, description or a label contains ``text`` (case-insensitive)."""
    return queryset.filter(
        Q(name__icontains=text) | Q(description__icontains=text) | Q(label_index__icontains=text)
    )


# --- what registration pins ----------------------------------------------------------------


def registered_versions(checkpoint_ids: Iterable[int]) -> dict[int, list[str]]:
    """{checkpoint id: ["NAME vN", …]} for those of ``checkpoint_ids`` that are registered.

    One query; checkpoints without versions are absent. Every path that deletes
    checkpoint files (GC preview reasons, checkpoint and experiment deletion, partial
    deletion) asks this.
    """
    ids = list(checkpoint_ids)
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return {}
    rows = (
        ModelVersion.objects.filter(checkpoint_id__in=ids)
        .order_by("model__name", "version")
        .values_list("checkpoint_id", "model__name", "version")
    )
    for checkpoint_id, name, number in rows:
        found[checkpoint_id].append(f"{name} v{number}")
    return dict(found)


def versions_prefetch() -> Prefetch:
    """Prefetch of each checkpoint's ``model_versions`` (with their model), for API lists:
    one more query per page, whatever its size."""
    return Prefetch(
        "model_versions",
        queryset=ModelVersion.objects.select_related("model").order_by("model__name", "version"),
    )


def mark_registered(checkpoints) -> None:
    """Set ``registered_as`` (``"a v1, b v2"`` or ``""``) on each checkpoint of a page.

    For the "registered" badges of checkpoint tables; one query for the whole page.
    """
    checkpoints = list(checkpoints)
    found = registered_versions(c.pk for c in checkpoints)
    for checkpoint in checkpoints:
        checkpoint.registered_as = ", ".join(found.get(checkpoint.pk, []))


def experiment_versions(experiment_id: int) -> list[str]:
    """``NAME vN`` of every version pinning a checkpoint of the experiment."""
    rows = (
        ModelVersion.objects.filter(checkpoint__experiment_id=experiment_id)
        .order_by("model__name", "version")
        .values_list("model__name", "version")
    )
    return [f"{name} v{number}" for name, number in rows]


def checkpoint_registered_refusal(checkpoint: Checkpoint) -> str | None:
    """Why ``checkpoint`` may not be deleted (its versions), or None when it is not pinned."""
    versions = registered_versions([checkpoint.pk]).get(checkpoint.pk)
    if not versions:
        return None
    return (
        f"checkpoint {checkpoint.uuid} is registered as {name_versions(versions)}; "
        "delete those model versions first (the experiment's owner may, as well as the "
        "model's owner)."
    )


def experiment_registered_refusal(experiment_id: int) -> str | None:
    """Why the experiment may not be deleted (versions pin its checkpoints), or None."""
    versions = experiment_versions(experiment_id)
    if not versions:
        return None
    return (
        f"experiment {experiment_id} has checkpoints registered as model versions "
        f"({name_versions(versions)}); delete those versions before deleting the experiment."
    )


def name_versions(labels: list[str]) -> str:
    """``a v1, b v2`` — at most five, then "and N more"."""
    shown = ", ".join(labels[:MAX_NAMED_VERSIONS])
    rest = len(labels) - MAX_NAMED_VERSIONS
    return f"{shown} and {rest} more" if rest > 0 else shown
