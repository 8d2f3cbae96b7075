"""Small builders for test data, shared by the test modules."""

from experiments.models import Checkpoint, Experiment, Trial


def make_experiment(owner, storage, name="exp", metric="loss", smaller_is_better=True, **extra):
    """An experiment row without going through config parsing."""
    return Experiment.objects.create(
        name=name,
        owner=owner,
        searcher_metric=metric,
        smaller_is_better=smaller_is_better,
        storage=storage,
        **extra,
    )


def bulk_checkpoints(trial: Trial, rows):
    """Create checkpoints fast: rows of (steps, metric, state, protected, size)."""
    objects = [
        Checkpoint(
            trial=trial,
            experiment_id=trial.experiment_id,
            steps_completed=steps,
            validation_metric=metric,
            state=state,
            protected=protected,
            size_bytes=size,
        )
        for steps, metric, state, protected, size in rows
    ]
    return Checkpoint.objects.bulk_create(objects)
