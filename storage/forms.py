"""Forms of the storage app: the StorageConfig form with write-only secrets."""

from django import forms
from django.core.exceptions import ValidationError

from storage.backends import BACKENDS, SECRET_FIELDS, STORAGE_FIELDS, URL_FIELDS
from storage.models import StorageConfig, redact_url


class SecretInput(forms.PasswordInput):
    """A password box that never renders the stored value (``render_value=False``)."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})})


#: Help under each location field of the admin form (the spec's checkpoint_storage keys).
FIELD_HELP = {
    "type": "Where the files live. Only the fields of the chosen type are shown.",
    "host_path": "shared_fs: absolute directory on the server (and the training hosts) "
    "that holds checkpoints, e.g. /mnt/checkpoints.",
    "storage_path": "shared_fs: optional sub-directory of host_path, relative, no '..'.",
    "bucket": "s3 / gcs: the bucket name, without s3:// or gs://.",
    "prefix": "s3 / gcs: optional key prefix inside the bucket, e.g. team-a/ckpts.",
    "endpoint_url": "s3: for S3-compatible stores (MinIO, Ceph), e.g. https://minio:9000. "
    "Leave blank for AWS. Credentials in the URL are kept secret.",
    "container": "azure: the blob container name.",
    "connection_string": "azure: a storage account connection string (its AccountKey is "
    "secret). Give this or account_url, not both.",
    "account_url": "azure: e.g. https://ACCOUNT.blob.core.windows.net; a SAS query in it is "
    "kept secret.",
    "credential": "azure: with account_url, an account key or a SAS token (secret).",
    "is_default": "The master configuration: experiments without checkpoint_storage use it.",
}


def type_fields() -> dict[str, list[str]]:
    """Each storage type's own fields; the admin shows only the chosen type's."""
    return {kind: list(backend.parameters) for kind, backend in BACKENDS.items()}


def types_using(name: str) -> str:
    """``"s3"``, ``"s3 / gcs"``: the storage types that have field ``name``."""
    return " / ".join(kind for kind, backend in BACKENDS.items() if name in backend.parameters)


class StorageConfigForm(forms.ModelForm):
    """Add/change a StorageConfig.

    Secrets are write-only: their boxes are always empty, the help text says whether a
    value is set, a blank box keeps the stored value and a "clear" box removes it.
    Per-type validation is ``StorageConfig.clean``; exactly one config is the default.
    """

    clear_access_key = forms.BooleanField(required=False, label="Clear the stored access key")
    clear_secret_key = forms.BooleanField(required=False, label="Clear the stored secret key")
    clear_connection_string = forms.BooleanField(
        required=False, label="Clear the stored connection string"
    )
    clear_credential = forms.BooleanField(required=False, label="Clear the stored credential")

    class Meta:
        model = StorageConfig
        fields = [
            "name",
            "type",
            *STORAGE_FIELDS,
            "is_default",
            "direct_urls",
            "save_experiment_best",
            "save_trial_best",
            "save_trial_latest",
        ]
        widgets = {field: SecretInput() for field in SECRET_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, text in FIELD_HELP.items():
            if name in self.fields:
                self.fields[name].help_text = text
        for name in SECRET_FIELDS:
            stored = bool(self.instance.pk and getattr(self.instance, name))
            field = self.fields[name]
            field.initial = ""
            field.help_text = (
                f"{types_using(name)} only. Currently: {'set' if stored else 'not set'}. "
                + ("Leave blank to keep it." if stored else "Optional.")
            )

        for name in URL_FIELDS:
            if self.instance.pk and getattr(self.instance, name):
                self.initial[name] = redact_url(getattr(self.instance, name))

    def clean(self):
        """Write-only values: secrets left blank and redacted URLs keep the stored ones."""
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if name not in self._errors:
                cleaned[name] = self._clean_secret(name)
        for name in URL_FIELDS:
            if name not in self._errors:
                cleaned[name] = self._clean_url(name)
        return cleaned

    def _stored(self, name: str) -> str:
        """The value of ``name`` in the database ('' for a new config)."""
        if not self.instance.pk:
            return ""
        return StorageConfig.objects.filter(pk=self.instance.pk).values_list(name, flat=True)[0]

    def _clean_url(self, name: str) -> str:
        """Credentials in a URL are write-only: the redacted URL sent back keeps them."""
        value = self.cleaned_data.get(name, "")
        stored = self._stored(name)
        if stored and value == redact_url(stored):
            return stored
        return value

    def _clean_secret(self, name: str) -> str:
        """The new secret, the stored one when left blank, or '' when cleared."""
        if self.data.get(f"clear_{name}") in ("on", "true", "1", "True"):
            return ""
        return self.cleaned_data.get(name, "") or self._stored(name)

    def _get_validation_exclusions(self):
        """Skip the single-default constraint: saving a new default unsets the old one."""
        exclude = super()._get_validation_exclusions()
        exclude.add("is_default")
        return exclude

    def clean_is_default(self) -> bool:
        """Refuse to leave the site without a default storage."""
        is_default = self.cleaned_data.get("is_default", False)
        if is_default:
            return True
        others = StorageConfig.objects.filter(is_default=True)
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        if not others.exists():
            raise ValidationError(
                "Exactly one storage must be the default: make another storage the "
                "default instead of unchecking this one."
            )
        return False
