"""Small builders for test data and signed-in clients, shared by every test folder.

The personas (fixtures in ``tests/conftest.py``) are alice (the owner), bob (another user)
and staff; ``password_for`` gives the password each signs in with through the login form.
"""

from __future__ import annotations

import uuid as uuid_lib
from pathlib import Path

from django.test import Client
from rest_framework.test import APIClient

from experiments import services
from experiments.models import Checkpoint, Experiment, Trial


def password_for(username: str) -> str:
    """The password a persona was created with (``alice`` -> ``alice-pass-123``)."""
    return f"{username}-pass-123"


def client_for(user=None, *, api: bool = False, **options) -> Client:
    """A test client signed in as ``user`` (anonymous when None).

    ``api=True`` gives DRF's APIClient with the user forced onto every request (no session,
    no CSRF); otherwise Django's page client with a session login. ``options`` go to the
    client (``raise_request_exception=False`` answers a crash with a 500, as served).
    """
    if api:
        client = APIClient(**options)
        if user is not None:
            client.force_authenticate(user)
        return client
    client = Client(**options)
    if user is not None:
        client.force_login(user)
    return client


def make_experiment(owner, storage, name="exp", metric="loss", smaller_is_better=True, **extra):
    """An experiment row of ``owner`` on ``storage`` without going through config parsing."""
    extra.setdefault("config", {"searcher": {"metric": metric}})
    return Experiment.objects.create(
        name=name,
        owner=owner,
        searcher_metric=metric,
        smaller_is_better=smaller_is_better,
        storage=storage,
        **extra,
    )


def add_checkpoints(trial, rows):
    """Report checkpoints through the services: rows of (steps, metric or None)."""
    checkpoints = []
    for steps, metric in rows:
        if metric is not None:
            services.report_validation(trial, steps, {"loss": metric})
        checkpoints.append(
            services.report_checkpoint(trial, steps, resources={"state-dict.pth": steps})
        )
    return checkpoints


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


def write_files(storage, checkpoint_uuid, files: dict[str, bytes]) -> None:
    """Put a checkpoint's files under a shared_fs storage, in ``<host_path>/<uuid>/``."""
    root = Path(storage.host_path) / str(checkpoint_uuid)
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)


def report_with_files(storage, trial, steps, files, metric=None, metadata=None):
    """Files on the shared_fs storage under <uuid>/, then the report (as a trainer does)."""
    checkpoint_uuid = uuid_lib.uuid4()
    write_files(storage, checkpoint_uuid, files)
    if metric is not None:
        services.report_validation(trial, steps, {"loss": metric})
    return services.report_checkpoint(
        trial,
        steps,
        resources={relative: len(data) for relative, data in files.items()},
        metadata=metadata or {"steps": steps},
        uuid=checkpoint_uuid,
    )


# --- experiments on a storage location (a ``tests.stores.Store``) ------------------------

#: The files of every checkpoint ``add_checkpoint`` reports (relative path -> content).
CHECKPOINT_FILES = {
    "state-dict.pth": b"weights" * 10,
    "metadata.json": b'{"framework": "pytorch"}',
    "code/model_def.py": b"import torch\n",
}


def experiment_on(owner, store, policy=(0, 1, 1), name="gc-test") -> Experiment:
    """An experiment on ``store``'s storage, created through the services, with a policy."""
    best, trial_best, latest = policy
    config = {
        "name": name,
        "searcher": {"metric": "loss", "smaller_is_better": True},
        "checkpoint_storage": {
            **store.storage_section,
            "save_experiment_best": best,
            "save_trial_best": trial_best,
            "save_trial_latest": latest,
        },
    }
    return services.create_experiment(owner, config)


def add_checkpoint(trial, store, steps: int, metric: float | None, files=None):
    """Report a validation (when ``metric`` is set) and a checkpoint whose files exist."""
    files = CHECKPOINT_FILES if files is None else files
    if metric is not None:
        services.report_validation(trial, steps, {"loss": metric})
    checkpoint = services.report_checkpoint(
        trial, steps, resources={path: len(data) for path, data in files.items()}
    )
    for path, data in files.items():
        store.put(str(checkpoint.uuid), path, data)
    return checkpoint


def s3_storage(name: str, **fields):
    """An S3 StorageConfig with credentials whose endpoint refuses connections (port 9)."""
    from storage.models import StorageConfig

    values = {
        "bucket": "b",
        "endpoint_url": "http://127.0.0.1:9",
        "access_key": "AKIASECRETACCESS",
        "secret_key": "the-secret-key-value",
        **fields,
    }
    return StorageConfig.objects.create(name=name, type="s3", **values)
