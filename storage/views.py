"""The staff page of checkpoint storage: each location, who uses it and how much it holds."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import BigIntegerField, Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ckptweb.lib.db import ByteSum
from experiments.choices import CheckpointState
from experiments.models import Checkpoint, Experiment
from storage.models import StorageConfig

EXPERIMENTS_LISTED = 20


def _per_storage(aggregate, output_field):
    """``aggregate`` over the live checkpoints of the outer storage's experiments."""
    rows = (
        Checkpoint.objects.filter(experiment__storage=OuterRef("pk"))
        .exclude(state=CheckpointState.DELETED)
        .order_by()
        .values("experiment__storage")
        .annotate(v=aggregate)
        .values("v")[:1]
    )
    return Coalesce(Subquery(rows, output_field=output_field), 0)


def storage_rows():
    """Storage configs with experiment counts, live checkpoints and bytes (secrets excluded)."""
    return (
        StorageConfig.objects.defer("access_key", "secret_key")
        .annotate(
            n_experiments=Count("experiments", distinct=True),
            n_live=_per_storage(Count("id"), IntegerField()),
            live_bytes=_per_storage(ByteSum("size_bytes"), BigIntegerField()),
        )
        .prefetch_related(
            Prefetch(
                "experiments",
                queryset=Experiment.objects.only("id", "name", "state", "storage_id").order_by(
                    "-id"
                ),
                to_attr="experiment_list",
            )
        )
        .order_by("-is_default", "name")
    )


@login_required
@require_GET
def storage_list(request):
    """Every StorageConfig with its location and usage; staff only."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can see storage configuration.")
    storages = list(storage_rows())
    for storage in storages:
        storage.experiments_shown = storage.experiment_list[:EXPERIMENTS_LISTED]
    return render(
        request,
        "storage/storage_list.html",
        {"heading": "Storage", "storages": storages, "experiments_listed": EXPERIMENTS_LISTED},
    )
