"""Business logic of the storage app: a checkpoint's files, previews, archives, imports.

Views, the admin and management commands call these functions; they never talk to a
backend directly.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from ckptweb.limits import MAX_FIELD_BYTES, InvalidInput, parse_json
from storage.archive import TarPlan, iter_archive
from storage.backends import get_backend
from storage.backends.base import (
    FileNotFoundInStorage,
    StorageBackend,
    StorageError,
    StoredFile,
    check_uuid,
)
from storage.models import StorageConfig
from storage.paths import UnsafePath, check_relative_path

logger = logging.getLogger(__name__)

PREVIEW_LIMIT = 1024 * 1024
METADATA_FILE = "metadata.json"
#: Files shown as text: source code, configs and logs.
TEXT_EXTENSIONS = frozenset(
    [
        ".py",
        ".txt",
        ".md",
        ".rst",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".cfg",
        ".ini",
        ".csv",
        ".tsv",
        ".log",
        ".sh",
        ".js",
        ".ts",
        ".html",
        ".css",
        ".xml",
        ".sql",
        ".r",
        ".jl",
        ".ipynb",
        ".proto",
        ".conf",
        ".env",
    ]
)
TEXT_NAMES = frozenset({"Dockerfile", "Makefile", "README", "LICENSE", "requirements.txt"})
#: States whose files are gone or going: downloads answer 410 Gone.
GONE_STATES = ("DELETING", "DELETED")


class CheckpointGone(Exception):
    """The checkpoint's files are deleted or being deleted."""


# --- files of a checkpoint -----------------------------------------------------------------


def checkpoint_backend(checkpoint) -> StorageBackend:
    """The backend of the storage the checkpoint's experiment writes to."""
    return get_backend(checkpoint.experiment.storage)


def ensure_downloadable(checkpoint) -> None:
    """Raise CheckpointGone when the checkpoint is DELETING or DELETED."""
    if checkpoint.state in GONE_STATES:
        raise CheckpointGone(
            f"Checkpoint {checkpoint.uuid} is {checkpoint.state.lower()}; its files are gone."
        )


def checkpoint_files(checkpoint) -> list[StoredFile]:
    """The checkpoint's files as they are in storage now, sorted by path."""
    return checkpoint_backend(checkpoint).list_files(str(checkpoint.uuid))


def stat_checkpoint_file(checkpoint, path: str) -> StoredFile:
    """Size, mtime and etag of one file. Raises UnsafePath or FileNotFoundInStorage."""
    return checkpoint_backend(checkpoint).stat(str(checkpoint.uuid), check_relative_path(path))


def open_checkpoint_file(checkpoint, path: str, start: int = 0, end: int | None = None):
    """A stream of bytes ``[start, end)`` of one file; the caller closes it."""
    relative = check_relative_path(path)
    return checkpoint_backend(checkpoint).open(str(checkpoint.uuid), relative, start, end)


def is_text_file(path: str) -> bool:
    """True for files worth previewing as text: code, YAML, JSON, logs."""
    name = posixpath.basename(path)
    return name in TEXT_NAMES or posixpath.splitext(name)[1].lower() in TEXT_EXTENSIONS


def read_text_preview(checkpoint, path: str, limit: int = PREVIEW_LIMIT) -> str | None:
    """The text of a small text file (≤ ``limit`` bytes), else None. Not HTML-escaped.

    None for binary-looking, undecodable, oversized, unsafe or missing files.
    """
    try:
        relative = check_relative_path(path)
        if not is_text_file(relative):
            return None
        stored = stat_checkpoint_file(checkpoint, relative)
        if stored.size > limit:
            return None
        data = read_fully(open_checkpoint_file(checkpoint, relative, 0, stored.size))
    except (UnsafePath, StorageError) as exc:
        logger.info("No preview of %s in %s: %s", path, checkpoint.uuid, exc)
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_fully(reader) -> bytes:
    """Every byte of a reader opened on a small range, then close it."""
    try:
        chunks = []
        while chunk := reader.read(PREVIEW_LIMIT):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        reader.close()


# --- archives ------------------------------------------------------------------------------


@dataclass
class CheckpointArchive:
    """What a download needs: the file list, an opener and the plain tar's layout."""

    checkpoint: object
    files: list[StoredFile]
    backend: StorageBackend

    @property
    def tar_plan(self) -> TarPlan:
        if not hasattr(self, "_plan"):
            self._plan = TarPlan(self.files)
        return self._plan

    def open(self, path: str, start: int, end: int):
        """Opener for archive generators."""
        return self.backend.open(str(self.checkpoint.uuid), path, start, end)

    def stream(self, fmt: str) -> Iterator[bytes]:
        """The whole archive in ``fmt`` (tar, tgz, zip)."""
        return iter_archive(fmt, self.files, self.open)

    def stream_tar_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the plain tar."""
        return self.tar_plan.iter_bytes(self.open, start, end)


def checkpoint_archive(checkpoint) -> CheckpointArchive:
    """Everything needed to stream the checkpoint as an archive. Raises StorageError."""
    backend = checkpoint_backend(checkpoint)
    files = backend.list_files(str(checkpoint.uuid))
    if not files:
        raise FileNotFoundInStorage(f"checkpoint {checkpoint.uuid} has no files in storage")
    return CheckpointArchive(checkpoint=checkpoint, files=files, backend=backend)


# --- storage configs -----------------------------------------------------------------------


def test_connection(config: StorageConfig) -> tuple[bool, str]:
    """Check that ``config`` is reachable: ``(True, "...")`` or ``(False, error)``.

    The message never contains a secret.
    """
    try:
        get_backend(config).check_connection()
    except StorageError as exc:
        return False, config.scrub(str(exc))
    except Exception as exc:  # a misconfiguration must be reported, not crash the admin
        logger.exception("Unexpected error testing storage %s", config.pk)
        return False, config.scrub(f"{type(exc).__name__}: {exc}")
    return True, f"{config.name}: connected to {config.location}"


test_connection.__test__ = False  # not a pytest test, despite the name


@transaction.atomic
def make_default(config: StorageConfig) -> StorageConfig:
    """Make ``config`` the only default storage (unsetting the previous one) and save it."""
    StorageConfig.objects.select_for_update().filter(is_default=True).exclude(pk=config.pk).update(
        is_default=False
    )
    config.is_default = True
    config.save()
    return config


# --- imports -------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """Outcome of ``import_checkpoints``: what was registered and what was skipped, why."""

    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (directory, reason)


class ImportSkip(Exception):
    """A directory that cannot be registered; the message says why."""


def import_checkpoints(config: StorageConfig, experiment, trial=None) -> ImportReport:
    """Register every ``<uuid>/metadata.json`` directory of ``config`` under ``experiment``.

    ``metadata.json`` must hold ``steps_completed``; ``trial_id`` (optional) must be a
    trial of the experiment, else ``trial`` (or a trial created for imports) is used.
    Directories already registered are skipped, so running it twice changes nothing.
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
            checkpoint = _import_one(backend, experiment, trial, directory)
        except ImportSkip as exc:
            report.skipped.append((directory, str(exc)))
        except StorageError as exc:
            report.skipped.append((directory, f"storage error: {config.scrub(str(exc))}"))
        else:
            report.imported.append(str(checkpoint.uuid))
    return report


def _import_one(backend: StorageBackend, experiment, trial, directory: str):
    """Register one directory as a checkpoint, or raise ImportSkip."""
    from experiments.models import Checkpoint

    try:
        checkpoint_uuid = check_uuid(directory)
    except UnsafePath:
        raise ImportSkip("not a checkpoint UUID") from None
    if Checkpoint.objects.filter(uuid=checkpoint_uuid).exists():
        raise ImportSkip("already registered")
    files = backend.list_files(checkpoint_uuid)
    metadata = _read_metadata(backend, checkpoint_uuid, files)
    steps = metadata.get("steps_completed")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ImportSkip("metadata.json has no non-negative integer steps_completed")
    resources = {stored.path: stored.size for stored in files}
    target_trial = _import_trial(experiment, trial, metadata.get("trial_id"))
    from experiments import services as experiment_services

    try:
        with transaction.atomic():
            return experiment_services.report_checkpoint(
                target_trial, steps, resources, metadata, uuid=checkpoint_uuid
            )
    except experiment_services.ReportError as exc:
        raise ImportSkip(exc.message) from None
    except IntegrityError:
        raise ImportSkip("already registered") from None


def _read_metadata(backend: StorageBackend, checkpoint_uuid: str, files) -> dict:
    """The parsed ``metadata.json`` of a checkpoint directory, or ImportSkip."""
    sizes = {stored.path: stored.size for stored in files}
    if METADATA_FILE not in sizes:
        raise ImportSkip("no metadata.json")
    if sizes[METADATA_FILE] > MAX_FIELD_BYTES:
        raise ImportSkip("metadata.json is larger than 1 MiB")
    raw = read_fully(backend.open(checkpoint_uuid, METADATA_FILE, 0, sizes[METADATA_FILE]))
    try:
        metadata = parse_json(raw, "metadata.json")
    except InvalidInput as exc:
        raise ImportSkip(exc.message) from None
    if not isinstance(metadata, dict):
        raise ImportSkip("metadata.json is not a JSON object")
    return metadata


def _import_trial(experiment, trial, trial_id):
    """The trial an imported checkpoint belongs to."""
    from experiments.models import Trial

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
        experiment=experiment, hparams={"imported": True}, defaults={"state": "COMPLETED"}
    )
    return imported
