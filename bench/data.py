"""Generated benchmark data: a user with a token, experiments of N trials x M checkpoints.

Checkpoints and validations are bulk-inserted by PostgreSQL itself (INSERT … SELECT over
generate_series: 100k rows in seconds, no Python per row); half of the checkpoints (every
other step) have a validation and hence a validation metric.
Requires Django to be set up on the bench database.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from ckptweb.accounts.services import create_token
from experiments.models import Checkpoint, Experiment, Trial, Validation
from storage.models import StorageConfig

METRIC = "validation_loss"
STEP = 100
USERNAME = "bench"

#: Checkpoints of every trial of an experiment at steps 100, 200, …; every other one
#: (steps 200, 400, …) has a validation metric; sizes 50-500 MiB in two files.
INSERT_CHECKPOINTS = """
INSERT INTO {checkpoint} (uuid, experiment_id, trial_id, steps_completed, report_time, state,
                          resources, size_bytes, metadata, validation_metric, protected, error)
SELECT gen_random_uuid(), %(experiment)s, g.trial_id, g.k * {step}, now(), 'COMPLETED',
       jsonb_build_object('state-dict.pth', g.size - 4096, 'metadata.json', 4096), g.size,
       '{{}}'::jsonb, g.metric, false, ''
FROM (
    SELECT t.id AS trial_id, k,
           (50 + floor(random() * 450))::bigint * 1048576 AS size,
           CASE WHEN k %% 2 = 0 THEN round((0.05 + random() * 1.95)::numeric, 6)::float8 END
               AS metric
    FROM {trial} t CROSS JOIN generate_series(1, %(per_trial)s) AS k
    WHERE t.experiment_id = %(experiment)s
    ORDER BY t.id, k
) g
"""
INSERT_VALIDATIONS = """
INSERT INTO {validation} (trial_id, steps_completed, metrics, report_time)
SELECT trial_id, steps_completed, jsonb_build_object(%(metric)s, validation_metric), now()
FROM {checkpoint}
WHERE experiment_id = %(experiment)s AND validation_metric IS NOT NULL
ORDER BY id
"""


@dataclass(frozen=True)
class BenchExperiment:
    """A generated experiment: its id, trial ids and size."""

    id: int
    trial_ids: list[int]
    checkpoints: int


def bench_user():
    """The (staff) user every benchmark request is made as, and its API token key."""
    user, _ = get_user_model().objects.get_or_create(
        username=USERNAME, defaults={"is_staff": True, "is_superuser": True}
    )
    return user, create_token(user, "bench")[1]


def shared_fs_storage(name: str, host_path: str) -> StorageConfig:
    """A shared_fs StorageConfig rooted at ``host_path`` (a temp dir)."""
    storage, _ = StorageConfig.objects.update_or_create(
        name=name, defaults={"type": "shared_fs", "host_path": host_path}
    )
    return storage


def create_experiment(name: str, storage: StorageConfig, trials: int) -> Experiment:
    """An ACTIVE experiment (metric ``validation_loss``, smaller is better) with ``trials``."""
    owner, _token = bench_user()
    experiment = Experiment.objects.create(
        name=name, owner=owner, searcher_metric=METRIC, smaller_is_better=True, storage=storage
    )
    Trial.objects.bulk_create(
        [Trial(experiment=experiment, hparams={"lr": 10.0**-i % 7}) for i in range(trials)]
    )
    return experiment


def reporting_experiment(name: str, root, trials: int) -> tuple[Experiment, list[int]]:
    """An empty experiment of ``trials`` on shared_fs under ``root`` to report into; its ids."""
    root.mkdir(parents=True, exist_ok=True)
    experiment = create_experiment(name, shared_fs_storage(f"bench-{root.name}", str(root)), trials)
    return experiment, list(experiment.trials.order_by("id").values_list("id", flat=True))


def _insert_rows(experiment_id: int, per_trial: int, seed: float) -> int:
    """Bulk-insert the checkpoints and validations in the database; the checkpoint count."""
    tables = {
        "checkpoint": Checkpoint._meta.db_table,
        "trial": Trial._meta.db_table,
        "validation": Validation._meta.db_table,
        "step": STEP,
    }
    params = {"experiment": experiment_id, "per_trial": per_trial, "metric": METRIC}
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute(INSERT_CHECKPOINTS.format(**tables), params)
        inserted = cursor.rowcount
        cursor.execute(INSERT_VALIDATIONS.format(**tables), params)
    return inserted


def vacuum_analyze() -> None:
    """VACUUM ANALYZE the generated tables, as autovacuum would soon after a bulk load.

    Without it the planner has no statistics and index-only scans (COUNT(*) of a page)
    must visit every heap page, which a production database would not.
    """
    with connection.cursor() as cursor:
        for model in (Checkpoint, Validation, Trial):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def populate(
    name: str, storage: StorageConfig, trials: int, per_trial: int, seed: float = 0.5
) -> BenchExperiment:
    """An experiment of ``trials`` x ``per_trial`` COMPLETED checkpoints, half with metrics."""
    with transaction.atomic():
        experiment = create_experiment(name, storage, trials)
        trial_ids = list(experiment.trials.order_by("id").values_list("id", flat=True))
        inserted = _insert_rows(experiment.id, per_trial, seed)
    vacuum_analyze()
    return BenchExperiment(experiment.id, trial_ids, inserted)
