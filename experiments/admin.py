"""Django admin for experiments, trials, validations, checkpoints, GC runs and the registry."""

from django.contrib import admin

from experiments import summary
from experiments.models import Checkpoint, Experiment, GCRun, Model, ModelVersion, Trial, Validation


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "state", "searcher_metric", "storage", "created_at")
    list_filter = ("state", "storage")
    search_fields = ("name", "description")
    list_select_related = ("owner", "storage")
    raw_id_fields = ("owner",)
    readonly_fields = ("config", "config_yaml", "created_at", "updated_at")


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    list_display = ("id", "experiment", "state", "created_at")
    list_filter = ("state",)
    list_select_related = ("experiment",)
    raw_id_fields = ("experiment",)


@admin.register(Validation)
class ValidationAdmin(admin.ModelAdmin):
    list_display = ("id", "trial", "steps_completed", "report_time")
    raw_id_fields = ("trial",)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "uuid",
        "experiment",
        "trial",
        "steps_completed",
        "validation_metric",
        "state",
        "size_bytes",
        "protected",
    )
    list_filter = ("state", "protected")
    search_fields = ("uuid",)
    list_select_related = ("experiment", "trial")
    raw_id_fields = ("trial", "gc_run")
    readonly_fields = ("uuid", "experiment", "validation_metric", "report_time")

    # An edit here bypasses the services' summary deltas: recompute the summaries touched.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        summary.refresh(obj.experiment)

    def delete_model(self, request, obj):
        experiment = obj.experiment
        super().delete_model(request, obj)
        summary.refresh(experiment)

    def delete_queryset(self, request, queryset):
        experiments = list(Experiment.objects.filter(checkpoints__in=queryset).distinct())
        super().delete_queryset(request, queryset)
        for experiment in experiments:
            summary.refresh(experiment)


@admin.register(GCRun)
class GCRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "experiment",
        "reason",
        "state",
        "total",
        "deleted",
        "failed",
        "reclaimed_bytes",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "reason")
    list_select_related = ("experiment",)
    raw_id_fields = ("experiment", "checkpoint")
    readonly_fields = ("errors", "started_at", "finished_at", "heartbeat")


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    fields = ("version", "checkpoint", "comment", "registered_by", "created_at")
    readonly_fields = ("version", "checkpoint", "registered_by", "created_at")
    can_delete = True

    def has_add_permission(self, request, obj=None):
        # Versions are numbered and state-checked by experiments.registry: add through the API.
        return False


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "last_version", "created_at", "updated_at")
    search_fields = ("name", "description", "label_index")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    readonly_fields = ("last_version", "created_at", "updated_at")
    inlines = [ModelVersionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "model", "version", "checkpoint", "registered_by", "created_at")
    list_select_related = ("model", "checkpoint", "registered_by")
    search_fields = ("model__name", "checkpoint__uuid")
    readonly_fields = ("model", "version", "checkpoint", "registered_by", "created_at")

    def has_add_permission(self, request):
        return False
