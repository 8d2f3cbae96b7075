"""Where checkpoint files live."""

from urllib.parse import unquote, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from ckptweb.jobs import Run
from ckptweb.lib.policy import POLICY_FIELDS, Policy
from storage.backends import BACKENDS, SECRET_FIELDS, STORAGE_FIELDS, URL_FIELDS
from storage.backends.azure import CONNECTION_STRING_SECRETS, parse_connection_string
from storage.choices import ScanItemKind, ScanItemResolution, StorageType

#: What a page, a response or a stored config shows instead of a secret.
REDACTED = "********"


def url_credentials(url: str) -> list[str]:
    """The secrets inside ``url``: userinfo (``http://AK:SECRET@host``) and a query (SAS)."""
    try:
        parts = urlsplit(url)
        raw = [value for value in (parts.username, parts.password, parts.query) if value]
    except ValueError:
        return []
    return raw + [unquote(value) for value in raw if unquote(value) != value]


def redact_url(url: str) -> str:
    """``url`` without its secrets: userinfo and any query (a SAS token) become ``********``."""
    if "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if "@" in parts.netloc:
        parts = parts._replace(netloc=f"{REDACTED}@{parts.netloc.rsplit('@', 1)[1]}")
    if parts.query:
        parts = parts._replace(query=REDACTED)
    return urlunsplit(parts)


def credential_fields(fields: dict[str, str]) -> list[str]:
    """The names among ``fields`` that carry credentials: secrets, or a URL with some."""
    names = [name for name in SECRET_FIELDS if fields.get(name)]
    return names + [name for name in URL_FIELDS if url_credentials(fields.get(name) or "")]


class StorageConfig(models.Model):
    """One checkpoint storage location: a shared file system path, an S3 or a GCS bucket,
    or an Azure Blob Storage container.

    Exactly one row is the default (the spec's "master configuration"); it also carries the
    default ``save_*`` GC policy for experiments that set none. Which fields each type
    uses is declared by its backend class (``storage.backends``); the secret ones
    (``access_key``, ``secret_key``, ``connection_string``, ``credential``) are
    write-only: no page, API response, log line or error shows them, nor the AccountKey
    inside a connection string, nor credentials inside a URL field.
    """

    Type = StorageType

    name = models.SlugField(max_length=100, unique=True)
    type = models.CharField(max_length=16, choices=StorageType.choices)
    host_path = models.CharField(max_length=1024, blank=True)
    storage_path = models.CharField(max_length=1024, blank=True)
    bucket = models.CharField(max_length=255, blank=True)
    prefix = models.CharField(max_length=1024, blank=True)
    endpoint_url = models.CharField(max_length=1024, blank=True)
    access_key = models.CharField(max_length=255, blank=True)
    secret_key = models.CharField(max_length=1024, blank=True)
    container = models.CharField(max_length=255, blank=True)
    connection_string = models.CharField(max_length=2048, blank=True)
    account_url = models.CharField(max_length=1024, blank=True)
    credential = models.CharField(max_length=2048, blank=True)
    is_default = models.BooleanField(default=False)
    save_experiment_best = models.PositiveIntegerField(default=0)
    save_trial_best = models.PositiveIntegerField(default=1)
    save_trial_latest = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="storage_single_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    def clean(self):
        """The rules its type's backend declares: required fields, others blank, safe paths."""
        backend = BACKENDS.get(self.type)
        if backend is None:
            raise ValidationError({"type": f"Unknown storage type {self.type!r}."})
        values = {name: getattr(self, name) for name in STORAGE_FIELDS}
        errors = backend.parameter_errors(values)
        if errors:
            raise ValidationError({name: f"{name} {problem}" for name, problem in errors.items()})

    @property
    def location(self) -> str:
        """A human-readable location without secrets, e.g. ``s3://bucket/prefix``."""
        if self.type == StorageType.SHARED_FS:
            path = self.host_path.rstrip("/")
            if self.storage_path:
                path = f"{path}/{self.storage_path.strip('/')}"
            return path
        if self.type == StorageType.AZURE:
            location = f"azure://{self.container}"
            endpoint = self.azure_endpoint
        else:
            scheme = "s3" if self.type == StorageType.S3 else "gs"
            location = f"{scheme}://{self.bucket}"
            endpoint = self.endpoint_url
        if self.prefix.strip("/"):
            location += "/" + self.prefix.strip("/")
        if endpoint:
            location += f" via {redact_url(endpoint)}"
        return location

    @property
    def azure_endpoint(self) -> str:
        """The Azure account's blob endpoint without any secret (no key, no SAS query)."""
        if self.account_url:
            return self.account_url.split("?", 1)[0]
        pairs = parse_connection_string(self.connection_string)
        if pairs.get("BlobEndpoint"):
            return pairs["BlobEndpoint"].split("?", 1)[0]
        if pairs.get("AccountName"):
            suffix = pairs.get("EndpointSuffix", "core.windows.net")
            return f"https://{pairs['AccountName']}.blob.{suffix}"
        return ""

    @property
    def secret_values(self) -> list[str]:
        """The secret values of this config, for scrubbing them from error text."""
        values = [getattr(self, name) for name in SECRET_FIELDS]
        pairs = parse_connection_string(self.connection_string)
        values += [pairs.get(key, "") for key in CONNECTION_STRING_SECRETS]
        for name in URL_FIELDS:
            values += url_credentials(getattr(self, name))
        # Longest first, so that a key inside the connection string cannot survive in part.
        return sorted({value for value in values if value}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """Return ``text`` with every secret of this config replaced by ``***``."""
        for value in self.secret_values:
            text = text.replace(value, "***")
        return text

    def default_policy(self) -> Policy:
        """The ``save_*`` GC policy experiments on this storage get when they set none."""
        return Policy.from_mapping({field: getattr(self, field) for field in POLICY_FIELDS})


# --- reconciliation: scans of a storage against the database -------------------------------


class StorageScan(Run):
    """One comparison of what a storage holds with what the database says.

    Counters grow while the scan runs (the page shows them as progress); the classified
    directories are ScanItem rows. ``grace_seconds`` is the grace period the scan used: a
    directory written to more recently than that is never called orphaned.
    """

    storage = models.ForeignKey(StorageConfig, on_delete=models.CASCADE, related_name="scans")
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grace_seconds = models.PositiveIntegerField(default=3600)
    directories = models.PositiveBigIntegerField(default=0, help_text="Directories listed.")
    objects_listed = models.PositiveBigIntegerField(default=0)
    bytes_listed = models.PositiveBigIntegerField(default=0)
    orphaned = models.PositiveIntegerField(default=0)
    orphaned_bytes = models.PositiveBigIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    missing_bytes = models.PositiveBigIntegerField(default=0)
    drifted = models.PositiveIntegerField(default=0)
    young = models.PositiveIntegerField(default=0, help_text="Unknown dirs inside the grace.")
    skipped = models.PositiveIntegerField(
        default=0, help_text="Directories that are not checkpoint UUIDs of this storage."
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["storage", "-id"], name="scan_storage_idx")]

    def __str__(self) -> str:
        return f"Scan {self.pk} of {self.storage_id}"

    def scrub(self, text: str) -> str:
        return self.storage.scrub(text)


class ScanItem(models.Model):
    """One directory (or checkpoint) a scan classified as orphaned, missing or drifted.

    ``details`` holds what the page shows: for orphans ``metadata`` (experiment/trial from
    metadata.json) and ``checkpoint_state`` (DELETED, or null for an unknown UUID); for
    drift ``changed`` ``[{path, recorded, actual}]``, ``missing`` and ``extra`` paths.
    """

    Kind = ScanItemKind
    Resolution = ScanItemResolution

    scan = models.ForeignKey(StorageScan, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=ScanItemKind.choices)
    uuid = models.UUIDField()
    checkpoint = models.ForeignKey(
        "experiments.Checkpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bytes = models.PositiveBigIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)
    newest_modified = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    resolution = models.CharField(
        max_length=16, choices=ScanItemResolution.choices, default="", blank=True
    )
    resolution_note = models.TextField(blank=True)
    deletion = models.ForeignKey(
        "OrphanDeletion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="items",
        help_text="The orphan deletion that claimed this item.",
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["scan", "kind", "id"], name="scanitem_kind_idx"),
            models.Index(fields=["scan", "uuid"], name="scanitem_uuid_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"


class OrphanDeletion(Run):
    """One run deleting the orphaned directories of a scan, with progress and errors.

    Each item is claimed with a compare-and-set and re-checked just before its files go:
    its UUID must still be unknown (or DELETED) and its directory still older than the
    grace period; otherwise it is kept (``skipped``). ``errors`` is a list of
    ``{"uuid": ..., "error": ...}``.
    """

    scan = models.ForeignKey(StorageScan, on_delete=models.CASCADE, related_name="deletions")
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    total = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    reclaimed_bytes = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Orphan deletion {self.pk} of scan {self.scan_id}"

    @property
    def processed(self) -> int:
        """Items decided so far (deleted, kept or failed), for the progress bar."""
        return self.deleted + self.failed + self.skipped

    def scrub(self, text: str) -> str:
        return self.scan.storage.scrub(text)
