"""Where checkpoint files live."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from storage.choices import ALLOWED_FIELDS, REQUIRED_FIELDS, SECRET_FIELDS, StorageType
from storage.paths import UnsafePath, check_relative_path


class StorageConfig(models.Model):
    """One checkpoint storage location: a shared file system path, an S3 or a GCS bucket.

    Exactly one row is the default (the spec's "master configuration"); it also carries the
    default ``save_*`` GC policy for experiments that set none. ``access_key`` and
    ``secret_key`` are write-only: no page, API response, log line or error shows them.
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
        """Per-type validation: required fields present, foreign fields blank, safe paths."""
        errors = {}
        try:
            storage_type = StorageType(self.type)
        except ValueError:
            raise ValidationError({"type": f"Unknown storage type {self.type!r}."}) from None
        for field in REQUIRED_FIELDS[storage_type]:
            if not getattr(self, field):
                errors[field] = f"{field} is required for {storage_type.value} storage."
        for field in ("host_path", "storage_path", "bucket", "prefix", "endpoint_url"):
            if getattr(self, field) and field not in ALLOWED_FIELDS[storage_type]:
                errors[field] = f"{field} does not apply to {storage_type.value} storage."
        for field in SECRET_FIELDS:
            if getattr(self, field) and field not in ALLOWED_FIELDS[storage_type]:
                errors[field] = f"{field} does not apply to {storage_type.value} storage."
        if self.host_path and not self.host_path.startswith("/"):
            errors["host_path"] = "host_path must be an absolute path."
        for field in ("storage_path", "prefix"):
            value = getattr(self, field).strip("/")
            if value:
                try:
                    check_relative_path(value)
                except UnsafePath as exc:
                    errors[field] = f"{field}: {exc}"
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            errors["endpoint_url"] = "endpoint_url must start with http:// or https://."
        if errors:
            raise ValidationError(errors)

    @property
    def location(self) -> str:
        """A human-readable location without secrets, e.g. ``s3://bucket/prefix``."""
        if self.type == StorageType.SHARED_FS:
            path = self.host_path.rstrip("/")
            if self.storage_path:
                path = f"{path}/{self.storage_path.strip('/')}"
            return path
        scheme = "s3" if self.type == StorageType.S3 else "gs"
        location = f"{scheme}://{self.bucket}"
        if self.prefix.strip("/"):
            location += "/" + self.prefix.strip("/")
        if self.endpoint_url:
            location += f" via {self.endpoint_url}"
        return location

    @property
    def secret_values(self) -> list[str]:
        """The secret values of this config, for scrubbing them from error text."""
        return [value for value in (self.access_key, self.secret_key) if value]

    def scrub(self, text: str) -> str:
        """Return ``text`` with every secret of this config replaced by ``***``."""
        for value in self.secret_values:
            text = text.replace(value, "***")
        return text

    def default_policy(self) -> dict[str, int]:
        """The ``save_*`` GC policy experiments on this storage get when they set none."""
        return {
            "save_experiment_best": self.save_experiment_best,
            "save_trial_best": self.save_trial_best,
            "save_trial_latest": self.save_trial_latest,
        }
