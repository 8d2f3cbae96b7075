"""Where checkpoint files live."""

from urllib.parse import unquote, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from ckptweb.lib.policy import POLICY_FIELDS, Policy
from storage.backends import BACKENDS, SECRET_FIELDS, STORAGE_FIELDS, URL_FIELDS
from storage.backends.azure import CONNECTION_STRING_SECRETS, parse_connection_string
from storage.choices import StorageType

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
    direct_urls = models.BooleanField(
        default=True,
        help_text="Hand out presigned URLs (direct downloads). An S3 URL names the access key "
        "ID (never the secret), as SigV4 requires; turn this off to serve files only through "
        "ckptweb.",
    )
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

    def audit_fields(self) -> dict:
        """The config as the audit log keeps it: every field, a set secret as ``********``
        (an unset one as ""), URLs without their credentials."""
        fields = {"name": self.name, "type": self.type, "is_default": self.is_default}
        for name in sorted(STORAGE_FIELDS):
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = REDACTED if value else ""
            elif name in URL_FIELDS:
                value = redact_url(value)
            fields[name] = value
        fields["direct_urls"] = self.direct_urls
        fields |= {name: getattr(self, name) for name in POLICY_FIELDS}
        return fields

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


class UploadState(models.TextChoices):
    """Where an upload session is: open for bytes, or ended one way or the other."""

    OPEN = "OPEN", "Open"
    COMPLETED = "COMPLETED", "Completed"
    ABORTED = "ABORTED", "Aborted"


class UploadSession(models.Model):
    """Files on their way into directory ``<uuid>/`` of a storage (``storage.uploads``).

    Storage knows directories, never checkpoints: the session names the trial by its plain
    id (``trial_id``, no foreign key: ``storage`` never imports ``experiments``) and keeps
    what the checkpoint report will say (``report``: ``steps_completed``, ``metadata``)
    without reading it. ``files`` maps each declared path to its size; ``multipart`` the
    paths uploaded in parts to the store's upload id. An OPEN session past ``expires_at``
    is aborted by the sweep, and its directory is never an orphan while it is OPEN.
    """

    uuid = models.UUIDField(unique=True)
    storage = models.ForeignKey(StorageConfig, on_delete=models.PROTECT, related_name="uploads")
    trial_id = models.PositiveBigIntegerField(db_index=True)
    report = models.JSONField(default=dict)
    files = models.JSONField(default=dict)
    multipart = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=UploadState.choices, default=UploadState.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["state", "expires_at"], name="upload_state_expiry")]

    def __str__(self) -> str:
        return f"upload {self.pk} of {self.uuid}"
