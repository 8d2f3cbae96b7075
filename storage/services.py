"""Business logic of the storage app: storage configs, text previews, metadata files.

Nothing here knows a checkpoint: callers pass a backend and a directory name (a checkpoint's
UUID); ``experiments.downloads`` is the checkpoint side. The admin and management commands
call these functions; they never talk to a backend directly.
"""

from __future__ import annotations

import logging
import posixpath

from django.conf import settings
from django.db import transaction

from ckptweb.lib.limits import MAX_FIELD_BYTES, InvalidInput, parse_json
from ckptweb.lib.paths import UnsafePath, check_relative_path
from ckptweb.lib.policy import Policy
from storage.backends import STORAGE_FIELDS, get_backend
from storage.backends.base import (
    StorageBackend,
    StorageError,
)
from storage.models import StorageConfig, credential_fields

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
# --- files of a directory ---------------------------------------------------------------


def is_text_file(path: str) -> bool:
    """True for files worth previewing as text: code, YAML, JSON, logs."""
    name = posixpath.basename(path)
    return name in TEXT_NAMES or posixpath.splitext(name)[1].lower() in TEXT_EXTENSIONS


def read_text_preview(
    backend: StorageBackend, name: str, path: str, limit: int = PREVIEW_LIMIT
) -> str | None:
    """The text of a small text file (≤ ``limit`` bytes) of directory ``name``, else None.

    Not HTML-escaped. None for binary-looking, undecodable, oversized, unsafe or missing files.
    """
    try:
        relative = check_relative_path(path)
        if not is_text_file(relative):
            return None
        stored = backend.stat(name, relative)
        if stored.size > limit:
            return None
        data = read_fully(backend.open(name, relative, 0, stored.size))
    except (UnsafePath, StorageError) as exc:
        logger.info("No preview of %s in %s: %s", path, name, exc)
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


def read_metadata(backend: StorageBackend, checkpoint_uuid: str, size: int) -> dict:
    """The parsed ``metadata.json`` (of ``size`` bytes, from a listing) of a directory.

    Raises InvalidInput when it is over ``MAX_FIELD_BYTES``, not JSON or not an object, and
    StorageError when it cannot be read.
    """
    if size > MAX_FIELD_BYTES:
        raise InvalidInput(METADATA_FILE, "metadata.json is larger than 1 MiB")
    raw = read_fully(backend.open(checkpoint_uuid, METADATA_FILE, 0, size))
    metadata = parse_json(raw, METADATA_FILE)
    if not isinstance(metadata, dict):
        raise InvalidInput(METADATA_FILE, "metadata.json is not a JSON object")
    return metadata


# --- storage configs for experiment configs -----------------------------------------------


def default_storage() -> StorageConfig:
    """The default StorageConfig; created as shared_fs under the data dir if none exists."""
    storage = StorageConfig.objects.filter(is_default=True).first()
    if storage is not None:
        return storage
    path = settings.CKPTWEB_DEFAULT_SHARED_FS
    path.mkdir(parents=True, exist_ok=True)
    storage, _ = StorageConfig.objects.get_or_create(
        name="default",
        defaults={"type": "shared_fs", "host_path": str(path), "is_default": True},
    )
    if not storage.is_default:
        storage.is_default = True
        storage.save(update_fields=["is_default"])
    return storage


def storage_for_spec(spec, may_add: bool = True) -> StorageConfig:
    """The StorageConfig of an experiment's ``checkpoint_storage``: reused when identical.

    ``spec`` is a validated section (a ``StorageSpec`` of the config parser: ``type``,
    ``fields``, ``fingerprint()``). A location no StorageConfig has yet is added only when
    ``may_add`` (staff, or code run by the operator): ckptweb reads and deletes
    ``<root>/<uuid>/`` directories wherever an experiment's storage points, so a new root
    is an admin's decision. A refusal is an InvalidInput naming the field.
    """
    if spec.type is None:
        return default_storage()
    credentials = credential_fields(spec.fields)
    if credentials and not may_add:
        field = f"checkpoint_storage.{credentials[0]}"
        raise InvalidInput(
            field,
            f"{field}: only staff may send storage credentials; leave them out and name a "
            "storage an admin has configured (its credentials are kept there).",
        )
    fields = {key: spec.fields.get(key, "") for key in STORAGE_FIELDS}
    existing = StorageConfig.objects.filter(type=spec.type, **fields).order_by("id").first()
    if existing is not None:
        return existing
    if not may_add:
        location = StorageConfig(type=spec.type, **fields).location
        raise InvalidInput(
            "checkpoint_storage",
            f"checkpoint_storage: no storage is configured for {spec.type} at {location}; "
            "new storage locations are added by staff (Django admin), or leave "
            "checkpoint_storage out to use the default storage.",
        )
    storage = StorageConfig(name=f"{spec.type}-{spec.fingerprint()}", type=spec.type, **fields)
    storage.full_clean()
    storage.save()
    return storage


def apply_master_config(spec) -> StorageConfig:
    """Make ``spec`` (a validated ``checkpoint_storage``) the default storage, with its save_*."""
    fields = {key: spec.fields.get(key, "") for key in STORAGE_FIELDS}
    policy = Policy.from_mapping(spec.policy).as_dict()
    with transaction.atomic():
        StorageConfig.objects.filter(is_default=True).exclude(name="default").update(
            is_default=False
        )
        storage, _ = StorageConfig.objects.update_or_create(
            name="default",
            defaults={"type": spec.type, **fields, **policy, "is_default": True},
        )
        storage.full_clean()
    return storage
