"""Admin of StorageConfig: per-type validation, write-only secrets, a connection test."""

from django.contrib import admin, messages
from django.db import transaction

from storage import services
from storage.forms import StorageConfigForm
from storage.models import StorageConfig


@admin.register(StorageConfig)
class StorageConfigAdmin(admin.ModelAdmin):
    """Storage locations. Secrets are never rendered; exactly one config is the default."""

    form = StorageConfigForm
    list_display = ("name", "type", "location", "is_default", "updated_at")
    list_filter = ("type", "is_default")
    search_fields = ("name", "bucket", "container", "host_path")
    actions = ["test_connection"]
    fieldsets = (
        (None, {"fields": ("name", "type", "is_default")}),
        ("Shared file system", {"fields": ("host_path", "storage_path")}),
        (
            "S3 / GCS (prefix also applies to Azure)",
            {
                "fields": (
                    "bucket",
                    "prefix",
                    "endpoint_url",
                    ("access_key", "clear_access_key"),
                    ("secret_key", "clear_secret_key"),
                )
            },
        ),
        (
            "Azure Blob Storage",
            {
                "description": "container, optional prefix, and either a connection string "
                "or an account URL (with an optional account key or SAS credential).",
                "fields": (
                    "container",
                    ("connection_string", "clear_connection_string"),
                    "account_url",
                    ("credential", "clear_credential"),
                ),
            },
        ),
        (
            "Default GC policy",
            {"fields": ("save_experiment_best", "save_trial_best", "save_trial_latest")},
        ),
    )

    def save_model(self, request, obj, form, change):
        """Save; a config marked default takes the role from the previous default."""
        with transaction.atomic():
            if obj.is_default:
                services.make_default(obj)
            else:
                obj.save()

    def has_delete_permission(self, request, obj=None):
        """The default storage cannot be deleted: make another one the default first."""
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        """Check each selected storage and report success or the (secret-free) error."""
        for config in queryset:
            ok, message = services.test_connection(config)
            if ok:
                self.message_user(request, message, messages.SUCCESS)
            else:
                self.message_user(request, f"{config.name}: {message}", messages.ERROR)
