"""Admin of StorageConfig: per-type validation, write-only secrets, a connection test."""

from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import path

from ckptweb.audit.models import Action
from ckptweb.audit.record import record
from storage import services
from storage.forms import StorageConfigForm, type_fields
from storage.models import StorageConfig


@admin.register(StorageConfig)
class StorageConfigAdmin(admin.ModelAdmin):
    """Storage locations. Secrets are never rendered; exactly one config is the default."""

    form = StorageConfigForm
    change_form_template = "admin/storage/storageconfig/change_form.html"
    list_display = ("name", "type", "location", "is_default", "updated_at")
    list_filter = ("type", "is_default")
    search_fields = ("name", "bucket", "container", "host_path")
    actions = ["test_connection"]
    fieldsets = (
        (None, {"fields": ("name", "type", "is_default", "direct_urls")}),
        (
            "Location",
            {
                "description": "The fields of the chosen type (storage/admin.js hides the rest).",
                "fields": (
                    "host_path",
                    "storage_path",
                    "bucket",
                    "prefix",
                    "endpoint_url",
                    ("access_key", "clear_access_key"),
                    ("secret_key", "clear_secret_key"),
                ),
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

    class Media:
        js = ("js/storage_admin.js",)

    def render_change_form(self, request, context, *args, **kwargs):
        """The change form, with each type's fields for the script that hides the others."""
        context["type_fields"] = type_fields()
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self):
        """``<id>/test-connection/``: the change page's visible "Test connection" button."""
        test = path(
            "<int:pk>/test-connection/",
            self.admin_site.admin_view(self.test_connection_view),
            name="storage_storageconfig_test_connection",
        )
        return [test, *super().get_urls()]

    def test_connection_view(self, request, pk: int):
        """POST: test one storage, report on its change page (errors are secret-free)."""
        config = get_object_or_404(StorageConfig, pk=pk)
        if request.method == "POST" and self.has_view_or_change_permission(request, config):
            self.test_connection(request, StorageConfig.objects.filter(pk=pk))
        return redirect("admin:storage_storageconfig_change", pk)

    def save_model(self, request, obj, form, change):
        """Save; a config marked default takes the role from the previous default. Audited
        with the fields before and after (secrets as ``********``)."""
        with transaction.atomic():
            before = None
            if change:
                before = StorageConfig.objects.get(pk=obj.pk).audit_fields()
            if obj.is_default:
                services.make_default(obj)
            else:
                obj.save()
            action = Action.STORAGE_CHANGE if change else Action.STORAGE_CREATE
            record(action, "storage", obj.pk, before=before, after=obj.audit_fields())

    def delete_model(self, request, obj):
        with transaction.atomic():
            record(Action.STORAGE_DELETE, "storage", obj.pk, before=obj.audit_fields())
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for config in queryset:
                record(Action.STORAGE_DELETE, "storage", config.pk, before=config.audit_fields())
            super().delete_queryset(request, queryset)

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
