"""Enumerations of the storage app, and which StorageConfig fields each type uses.

``REQUIRED_FIELDS``/``ALLOWED_FIELDS`` drive both ``StorageConfig.clean`` and the
experiment-config parser; ``ONE_OF_FIELDS`` names groups of which exactly one must be set
(Azure: a connection string or an account URL). ``SECRET_FIELDS`` are write-only: never
rendered, returned, logged or quoted in an error (``StorageConfig.scrub``).
"""

from django.db import models


class StorageType(models.TextChoices):
    """The kinds of checkpoint storage of the spec's ``checkpoint_storage`` section."""

    SHARED_FS = "shared_fs", "Shared file system"
    S3 = "s3", "Amazon S3 (or compatible)"
    GCS = "gcs", "Google Cloud Storage"
    AZURE = "azure", "Azure Blob Storage"


# Fields each type needs and may have; the rest must stay blank.
REQUIRED_FIELDS = {
    StorageType.SHARED_FS: ("host_path",),
    StorageType.S3: ("bucket",),
    StorageType.GCS: ("bucket",),
    StorageType.AZURE: ("container",),
}
ALLOWED_FIELDS = {
    StorageType.SHARED_FS: ("host_path", "storage_path"),
    StorageType.S3: ("bucket", "prefix", "endpoint_url", "access_key", "secret_key"),
    StorageType.GCS: ("bucket", "prefix"),
    StorageType.AZURE: ("container", "prefix", "connection_string", "account_url", "credential"),
}
#: Exactly one field of each group must be set.
ONE_OF_FIELDS = {
    StorageType.AZURE: (("connection_string", "account_url"),),
}
#: ``credential`` only goes with ``account_url`` (a connection string carries its own key).
REQUIRES = {"credential": "account_url"}
SECRET_FIELDS = ("access_key", "secret_key", "connection_string", "credential")
#: The non-secret location fields of every type (for validation and display).
PLAIN_FIELDS = (
    "host_path",
    "storage_path",
    "bucket",
    "container",
    "prefix",
    "endpoint_url",
    "account_url",
)


def parse_connection_string(text: str) -> dict[str, str]:
    """The ``Key=Value;`` pairs of an Azure Storage connection string (keys as written).

    Values may contain ``=`` (base64 keys end in it); empty segments are ignored.
    """
    pairs = {}
    for segment in text.split(";"):
        key, sep, value = segment.strip().partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


#: Connection-string keys whose values are secret (scrubbed from any text).
CONNECTION_STRING_SECRETS = ("AccountKey", "SharedAccessSignature")


def type_field_errors(storage_type: StorageType, values: dict[str, str]) -> dict[str, str]:
    """``{field: problem}`` for ``values`` (non-blank fields only) against the type's rules.

    Problems are phrased after the field name, e.g. ``"is required for s3 storage."``; the
    caller prefixes the name (``bucket``, ``checkpoint_storage.bucket``). Never quotes a
    value, so secrets stay out of error text.
    """
    kind = storage_type.value
    errors = {}
    for name in REQUIRED_FIELDS[storage_type]:
        if not values.get(name):
            errors[name] = f"is required for {kind} storage."
    for name, value in values.items():
        if value and name not in ALLOWED_FIELDS[storage_type]:
            errors[name] = f"does not apply to {kind} storage."
    for group in ONE_OF_FIELDS.get(storage_type, ()):
        given = [name for name in group if values.get(name)]
        if len(given) != 1:
            names = " or ".join(group)
            problem = "give only one of" if given else "is required: give exactly one of"
            errors.setdefault(given[-1] if given else group[0], f"{problem} {names}.")
    for name, needed in REQUIRES.items():
        if values.get(name) and not values.get(needed) and name not in errors:
            errors[name] = f"needs {needed} (a connection string carries its own key)."
    connection_string = values.get("connection_string")
    if connection_string and "connection_string" not in errors:
        pairs = parse_connection_string(connection_string)
        if not (pairs.get("AccountName") or pairs.get("BlobEndpoint")):
            errors["connection_string"] = (
                "is not an Azure Storage connection string "
                "(expected AccountName=...;AccountKey=... or BlobEndpoint=... pairs)."
            )
    account_url = values.get("account_url")
    if account_url and not account_url.startswith(("http://", "https://")):
        errors.setdefault("account_url", "must start with http:// or https://.")
    return errors


# --- runs and storage reconciliation --------------------------------------------------------


class RunState(models.TextChoices):
    """Lifecycle of every background run (GC run, storage scan, orphan deletion).

    PENDING -> RUNNING -> SUCCEEDED | FAILED. A transient storage error keeps a run RUNNING
    while Celery retries it; its last attempt ends FAILED with ``error`` set. A RUNNING row
    whose ``heartbeat`` stopped is retired (FAILED) by ``storage.runs.retire_stale``.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


RUN_ACTIVE_STATES = (RunState.PENDING, RunState.RUNNING)
RUN_TERMINAL_STATES = (RunState.SUCCEEDED, RunState.FAILED)


class ScanItemKind(models.TextChoices):
    """What a scan found wrong with one checkpoint directory."""

    ORPHANED = "ORPHANED", "Orphaned"
    MISSING = "MISSING", "Missing"
    DRIFTED = "DRIFTED", "Drifted"


class ScanItemResolution(models.TextChoices):
    """What was done about a scan item (blank: nothing yet)."""

    OPEN = "", "Open"
    IMPORTED = "IMPORTED", "Imported"
    FILES_DELETED = "FILES_DELETED", "Files deleted"
    KEPT = "KEPT", "Kept (no longer an orphan)"
    DELETE_FAILED = "DELETE_FAILED", "Deletion failed"
    MARKED_DELETED = "MARKED_DELETED", "Marked deleted"
    RESYNCED = "RESYNCED", "Resources re-synced"


#: Resolutions an orphan may still be deleted from.
DELETABLE_RESOLUTIONS = (ScanItemResolution.OPEN, ScanItemResolution.DELETE_FAILED)
