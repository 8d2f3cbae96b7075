"""Importing checkpoints whose files already sit on storage (``<uuid>/metadata.json``).

``import_checkpoints`` registers every checkpoint directory of a storage under one
experiment (``manage.py import_checkpoints``); ``import_directory`` registers one (the
reconciliation page's "import" action on an orphan). Both go through
``services.report_checkpoint``, so an imported checkpoint meets the same checks and limits
as a reported one. ``metadata.json`` must hold ``steps_completed``; its ``trial_id`` (if
any) must be a trial of the experiment, else the given trial, else the experiment's
"imported" trial is used. A directory already registered is skipped, so importing twice
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from ckptweb.lib.errors import Conflict
from ckptweb.lib.limits import InvalidInput
from ckptweb.lib.paths import UnsafePath
from experiments.choices import TrialState
from experiments.models import Checkpoint, Experiment, Trial
from experiments.services import ReportError, report_checkpoint
from storage.backends import get_backend
from storage.backends.base import StorageBackend, StorageError, check_uuid
from storage.models import StorageConfig
from storage.services import METADATA_FILE, read_metadata


@dataclass
class ImportReport:
    """Outcome of ``import_checkpoints``: what was registered and what was skipped, why."""

    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (directory, reason)


class ImportSkip(Exception):
    """A directory that cannot be registered; the message says why."""


def import_checkpoints(
    config: StorageConfig, experiment: Experiment, trial: Trial | None = None
) -> ImportReport:
    """Register every checkpoint directory of ``config`` under ``experiment``.

    Raises ValueError when the experiment stores its checkpoints elsewhere.
    """
    if experiment.storage_id != config.pk:
        raise ValueError(
            f"experiment {experiment.pk} stores its checkpoints on "
            f"{experiment.storage.name!r}, not {config.name!r}"
        )
    backend = get_backend(config)
    report = ImportReport()
    for directory in backend.iter_checkpoint_dirs():
        try:
            checkpoint = import_directory(backend, experiment, trial, directory)
        except ImportSkip as exc:
            report.skipped.append((directory, str(exc)))
        except StorageError as exc:
            report.skipped.append((directory, f"storage error: {config.scrub(str(exc))}"))
        else:
            report.imported.append(str(checkpoint.uuid))
    return report


def import_directory(
    backend: StorageBackend, experiment: Experiment, trial: Trial | None, directory: str
) -> Checkpoint:
    """Register directory ``directory`` of ``backend`` as a checkpoint, or raise ImportSkip."""
    try:
        checkpoint_uuid = check_uuid(directory)
    except UnsafePath:
        raise ImportSkip("not a checkpoint UUID") from None
    if Checkpoint.objects.filter(uuid=checkpoint_uuid).exists():
        raise ImportSkip("already registered")
    files = backend.list_files(checkpoint_uuid)
    sizes = {stored.path: stored.size for stored in files}
    if METADATA_FILE not in sizes:
        raise ImportSkip("no metadata.json")
    try:
        metadata = read_metadata(backend, checkpoint_uuid, sizes[METADATA_FILE])
    except InvalidInput as exc:
        raise ImportSkip(exc.message) from None
    steps = metadata.get("steps_completed")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ImportSkip("metadata.json has no non-negative integer steps_completed")
    target_trial = _import_trial(experiment, trial, metadata.get("trial_id"))
    try:
        with transaction.atomic():
            return report_checkpoint(target_trial, steps, sizes, metadata, uuid=checkpoint_uuid)
    except (ReportError, Conflict) as exc:  # bad metadata, or the experiment is being deleted
        raise ImportSkip(exc.message) from None
    except IntegrityError:
        raise ImportSkip("already registered") from None


def _import_trial(experiment: Experiment, trial: Trial | None, trial_id) -> Trial:
    """The trial an imported checkpoint belongs to."""
    if trial_id is not None:
        if isinstance(trial_id, bool) or not isinstance(trial_id, int):
            raise ImportSkip(f"trial_id {trial_id!r} is not an integer")
        found = Trial.objects.filter(pk=trial_id, experiment=experiment).first()
        if found is None:
            raise ImportSkip(f"trial_id {trial_id!r} is not a trial of experiment {experiment.pk}")
        return found
    if trial is not None:
        return trial
    imported, _ = Trial.objects.get_or_create(
        experiment=experiment, hparams={"imported": True}, defaults={"state": TrialState.COMPLETED}
    )
    return imported
