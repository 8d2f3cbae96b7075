"""A database of the previous main migrates onto the reconcile app with every row intact.

StorageScan, ScanItem and OrphanDeletion moved from ``storage`` to ``storage.reconcile``
(label ``reconcile``) through state-only migrations (storage ``0004_move_scans``, reconcile
``0001_initial``) that keep their ``storage_*`` tables. This test migrates the test database
back to the previous main's migrations (storage ``0003_azure``, experiments
``0009_deleting_run_index``, no reconcile app), fills it through the historical models,
migrates forward and reads every row back through the current models. A move that loses or
changes a row, points a model at another table, or loses a foreign key or its SET_NULL fails
here, on SQLite and PostgreSQL alike. The database is left fully migrated for the tests that
follow, even when a test fails while migrated back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from experiments.models import Checkpoint, Experiment, GCRun, Model, ModelVersion, Trial
from storage.models import StorageConfig
from storage.reconcile.models import OrphanDeletion, ScanItem, StorageScan

pytestmark = pytest.mark.django_db(transaction=True)

PREVIOUS_MAIN = [
    ("storage", "0003_azure"),
    ("experiments", "0009_deleting_run_index"),
    ("reconcile", None),
]
THE_MOVE = {("storage", "0004_move_scans"), ("reconcile", "0001_initial")}
MOVED_TABLES = {"storage_storagescan", "storage_scanitem", "storage_orphandeletion"}
WHEN = datetime(2026, 12, 1, 12, 30, 15, 123456, tzinfo=UTC)

#: (app label, model name) in the previous main's state -> the current model.
CARRIED = {
    ("auth", "User"): User,
    ("storage", "StorageConfig"): StorageConfig,
    ("experiments", "Experiment"): Experiment,
    ("experiments", "Trial"): Trial,
    ("experiments", "Checkpoint"): Checkpoint,
    ("experiments", "GCRun"): GCRun,
    ("experiments", "Model"): Model,
    ("experiments", "ModelVersion"): ModelVersion,
    ("storage", "StorageScan"): StorageScan,
    ("storage", "ScanItem"): ScanItem,
    ("storage", "OrphanDeletion"): OrphanDeletion,
}


def latest_leaves() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def previous_main() -> list[tuple[str, str | None]]:
    """The previous main's leaves: the apps the move touched as they were, the others as now."""
    moved = {app for app, _name in PREVIOUS_MAIN}
    return [leaf for leaf in latest_leaves() if leaf[0] not in moved] + PREVIOUS_MAIN


def plan_to(targets) -> set[tuple[str, str]]:
    plan = MigrationExecutor(connection).migration_plan(targets)
    return {(migration.app_label, migration.name) for migration, _backwards in plan}


def migrate(targets):
    """Migrate the database to ``targets``; return the historical apps there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([node for node in targets if node[1]]).apps


@pytest.fixture
def old_apps():
    """The previous main's apps on a database migrated back to them; afterwards the database
    is migrated to the latest leaves whatever the test did."""
    try:
        yield migrate(previous_main())
    finally:
        migrate(latest_leaves())


def fill(apps) -> SimpleNamespace:
    """Rows of every kind the move touches, created through the previous main's models."""
    get = apps.get_model
    user = get("auth", "User").objects.create(username="alice", email="alice@example.com")
    config = get("storage", "StorageConfig").objects.create(
        name="old", type="shared_fs", host_path="/data/old", save_trial_best=2
    )
    experiment = get("experiments", "Experiment").objects.create(
        owner=user, storage=config, name="before the move", searcher_metric="loss"
    )
    trial = get("experiments", "Trial").objects.create(experiment=experiment, hparams={"lr": 0.1})
    registered, scanned = (
        get("experiments", "Checkpoint").objects.create(
            experiment=experiment,
            trial=trial,
            steps_completed=steps,
            resources={"weights.bin": steps * 10},
            size_bytes=steps * 10,
            metadata={"steps": steps},
        )
        for steps in (100, 200)
    )
    gc_run = get("experiments", "GCRun").objects.create(
        experiment=experiment,
        reason="CHECKPOINT_DELETED",
        checkpoint=scanned,
        started_by=user,
        state="RUNNING",
        started_at=WHEN,
        total=1,
        globs=["*.bin"],
        errors=[{"checkpoint": str(scanned.uuid), "error": "timeout"}],
    )
    scanned.state, scanned.gc_run = "DELETING", gc_run
    scanned.save()
    model = get("experiments", "Model").objects.create(
        owner=user, name="resnet", labels=["prod"], last_version=1
    )
    version = get("experiments", "ModelVersion").objects.create(
        model=model, version=1, checkpoint=registered, registered_by=user, comment="first"
    )
    scan = get("storage", "StorageScan").objects.create(
        storage=config,
        requested_by=user,
        state="SUCCEEDED",
        started_at=WHEN,
        finished_at=WHEN,
        grace_seconds=600,
        directories=3,
        objects_listed=7,
        bytes_listed=2300,
        orphaned=2,
        orphaned_bytes=300,
        drifted=1,
    )
    deletion = get("storage", "OrphanDeletion").objects.create(
        scan=scan,
        requested_by=user,
        state="FAILED",
        error="one failed",
        total=2,
        deleted=1,
        failed=1,
        reclaimed_bytes=100,
        errors=[{"uuid": str(uuid.uuid4()), "error": "denied"}],
    )
    ScanItem = get("storage", "ScanItem")
    drifted = ScanItem.objects.create(
        scan=scan,
        kind="DRIFTED",
        uuid=scanned.uuid,
        checkpoint=scanned,
        bytes=2000,
        file_count=1,
        details={"changed": [{"path": "weights.bin", "recorded": 2000, "actual": 1999}]},
    )
    orphan = ScanItem.objects.create(
        scan=scan,
        kind="ORPHANED",
        uuid=uuid.uuid4(),
        bytes=200,
        file_count=2,
        newest_modified=WHEN,
        details={"metadata": {"experiment": 9}, "checkpoint_state": None},
    )
    claimed = ScanItem.objects.create(
        scan=scan,
        kind="ORPHANED",
        uuid=uuid.uuid4(),
        bytes=100,
        deletion=deletion,
        resolution="FILES_DELETED",
        resolution_note="deleted by the orphan deletion",
    )
    return SimpleNamespace(
        user=user.pk,
        config=config.pk,
        registered=registered.pk,
        scanned=scanned.pk,
        gc_run=gc_run.pk,
        version=version.pk,
        scan=scan.pk,
        deletion=deletion.pk,
        drifted=drifted.pk,
        orphan=orphan.pk,
        claimed=claimed.pk,
    )


def rows(model) -> dict[int, dict]:
    """Every row of ``model``'s table, column by column (foreign keys as ids)."""
    return {row["id"]: row for row in model.objects.order_by("pk").values()}


def test_previous_main_migrates_forward_with_every_row_intact(old_apps):
    ids = fill(old_apps)
    before = {key: rows(old_apps.get_model(*key)) for key in CARRIED}
    assert plan_to(latest_leaves()) >= THE_MOVE

    migrate(latest_leaves())

    # Every column the previous main had keeps its value (columns added later are not its).
    after = {key: rows(model) for key, model in CARRIED.items()}
    assert {
        key: {pk: {c: row[c] for c in before[key][pk]} for pk, row in table.items()}
        for key, table in after.items()
    } == before
    assert {key: len(table) for key, table in before.items()} == {
        **dict.fromkeys(CARRIED, 1),
        ("experiments", "Checkpoint"): 2,
        ("storage", "ScanItem"): 3,
    }

    scan = StorageScan.objects.get(pk=ids.scan)
    assert (scan.storage_id, scan.requested_by_id) == (ids.config, ids.user)
    assert [item.pk for item in scan.items.all()] == [ids.drifted, ids.orphan, ids.claimed]
    assert [deletion.pk for deletion in scan.deletions.all()] == [ids.deletion]
    deletion = OrphanDeletion.objects.get(pk=ids.deletion)
    assert (deletion.scan_id, deletion.processed) == (ids.scan, 2)
    assert [item.pk for item in deletion.items.all()] == [ids.claimed]
    assert ScanItem.objects.get(pk=ids.drifted).checkpoint_id == ids.scanned
    assert ScanItem.objects.get(pk=ids.orphan).checkpoint_id is None
    assert ScanItem.objects.get(pk=ids.claimed).deletion_id == ids.deletion
    assert ModelVersion.objects.get(pk=ids.version).checkpoint_id == ids.registered
    gc_run = GCRun.objects.get(pk=ids.gc_run)
    assert gc_run.checkpoint_id == ids.scanned
    assert [c.pk for c in gc_run.claimed_checkpoints.all()] == [ids.scanned]


def test_checkpoint_deletion_still_clears_scan_items(old_apps):
    ids = fill(old_apps)
    migrate(latest_leaves())

    Checkpoint.objects.get(pk=ids.scanned).delete()

    assert ScanItem.objects.get(pk=ids.drifted).checkpoint_id is None
    assert ScanItem.objects.count() == 3
    assert GCRun.objects.get(pk=ids.gc_run).checkpoint_id is None


def test_the_move_ends_fully_migrated_on_the_same_tables(old_apps):
    migrate(latest_leaves())

    assert MigrationExecutor(connection).migration_plan(latest_leaves()) == []
    tables = set(connection.introspection.table_names())
    assert tables >= MOVED_TABLES
    assert not {table for table in tables if table.startswith("reconcile_")}
