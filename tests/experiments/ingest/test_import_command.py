"""``manage.py import_checkpoints``: checkpoints already on a storage, imported into an
experiment (shared_fs, S3 and Azure)."""

from __future__ import annotations

import json
import uuid as uuid_lib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Checkpoint, Experiment, Trial, Validation

pytestmark = pytest.mark.usefixtures("secret_watch")


@pytest.fixture(params=["shared_fs", "s3", "azure"])
def import_store(request, isolated_store):
    return isolated_store(request.param)


@pytest.fixture
def experiment(import_store, alice):
    return Experiment.objects.create(
        owner=alice, name="imported", searcher_metric="loss", storage=import_store.config
    )


def run_import(store, experiment) -> str:
    out = StringIO()
    call_command(
        "import_checkpoints", storage=store.config.name, experiment=experiment.pk, stdout=out
    )
    return out.getvalue()


def test_it_imports_idempotently(import_store, experiment):
    trial = Trial.objects.create(experiment=experiment)
    Validation.objects.create(trial=trial, steps_completed=100, metrics={"loss": 0.25})
    good = str(uuid_lib.uuid4())
    import_store.put_files(
        good,
        {
            "metadata.json": json.dumps({"steps_completed": 100, "trial_id": trial.pk}).encode(),
            "model/weights.bin": b"w" * 1000,
        },
    )
    no_trial = str(uuid_lib.uuid4())
    import_store.put_files(no_trial, {"metadata.json": b'{"steps_completed": 5}'})
    no_metadata = str(uuid_lib.uuid4())
    import_store.put_files(no_metadata, {"weights.bin": b"w"})
    bad_json = str(uuid_lib.uuid4())
    import_store.put_files(bad_json, {"metadata.json": b"{nope"})
    no_steps = str(uuid_lib.uuid4())
    import_store.put_files(no_steps, {"metadata.json": b'{"trial_id": 1}'})
    import_store.put("not-a-uuid", "metadata.json", b'{"steps_completed": 1}')

    output = run_import(import_store, experiment)

    checkpoint = Checkpoint.objects.get(uuid=good)
    assert checkpoint.trial == trial
    assert checkpoint.steps_completed == 100
    assert checkpoint.resources == {
        "metadata.json": checkpoint.resources["metadata.json"],
        "model/weights.bin": 1000,
    }
    assert checkpoint.size_bytes == sum(checkpoint.resources.values())
    assert checkpoint.validation_metric == 0.25
    assert Checkpoint.objects.get(uuid=no_trial).trial.hparams == {"imported": True}
    assert f"skipped {no_metadata}: no metadata.json" in output
    assert f"skipped {bad_json}: metadata.json is not valid JSON" in output
    assert f"skipped {no_steps}: metadata.json has no non-negative integer" in output
    assert "skipped not-a-uuid: not a checkpoint UUID" in output
    assert "2 imported, 4 skipped" in output

    again = run_import(import_store, experiment)
    assert "0 imported, 6 skipped" in again
    assert f"skipped {good}: already registered" in again
    assert Checkpoint.objects.filter(experiment=experiment).count() == 2


def test_it_refuses_a_trial_of_another_experiment(import_store, experiment, alice):
    other = Experiment.objects.create(
        owner=alice, name="other", searcher_metric="loss", storage=import_store.config
    )
    foreign = Trial.objects.create(experiment=other)
    directory = str(uuid_lib.uuid4())
    import_store.put_files(
        directory,
        {"metadata.json": json.dumps({"steps_completed": 1, "trial_id": foreign.pk}).encode()},
    )
    output = run_import(import_store, experiment)
    assert f"skipped {directory}: trial_id {foreign.pk} is not a trial of experiment" in output
    assert not Checkpoint.objects.exists()


def test_it_refuses_another_storage(import_store, experiment, default_storage):
    with pytest.raises(CommandError, match="stores its checkpoints on"):
        call_command("import_checkpoints", storage=default_storage.name, experiment=experiment.pk)


def test_unknown_names_are_command_errors(import_store, experiment):
    with pytest.raises(CommandError, match="No storage"):
        call_command("import_checkpoints", storage="nope", experiment=experiment.pk)
    with pytest.raises(CommandError, match="No experiment"):
        call_command("import_checkpoints", storage=import_store.config.name, experiment=0)
