"""examples/train_and_report.py against a live server: files on storage, reports linked, and
the experiment ends COMPLETED when its last trial block ends, so its policy runs."""

import json
import os
import pickle
import subprocess
import sys

import pytest

from ckptweb.jobs import RunState
from experiments.choices import GCReason
from experiments.models import Checkpoint, Experiment, GCRun, Validation
from storage.models import StorageConfig
from tests import REPO
from tests.spec import PYTORCH_FILES, PYTORCH_STATE_KEYS

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = REPO / "examples" / "train_and_report.py"


def test_the_example_trains_and_reports(live_server, token, tmp_path, default_storage):
    host_path = tmp_path / "shared"
    # An admin configured this location; alice's experiment config names it.
    StorageConfig.objects.create(name="team-fs", type="shared_fs", host_path=str(host_path))
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--host-path",
            str(host_path),
            "--steps",
            "300",
            "--every",
            "100",
        ],
        env={**os.environ, "CKPTWEB_URL": live_server.url, "CKPTWEB_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    experiment = Experiment.objects.get(name="toy-linear")
    assert experiment.owner.username == "alice"
    assert experiment.state == "COMPLETED"
    assert experiment.storage.host_path == str(host_path)
    assert Validation.objects.filter(trial__experiment=experiment).count() == 6
    checkpoints = list(Checkpoint.objects.filter(experiment=experiment).order_by("id"))
    assert len(checkpoints) == 6
    assert all(c.validation_metric is not None for c in checkpoints)
    # the learning curve goes down
    first_trial = [c for c in checkpoints if c.trial_id == checkpoints[0].trial_id]
    assert first_trial[-1].validation_metric < first_trial[0].validation_metric

    # Its trial blocks ended both trials COMPLETED, the last one ended the experiment, and
    # the GC run that started (the example waited for it) applied the default policy 0/1/1.
    assert set(experiment.trials.values_list("state", flat=True)) == {"COMPLETED"}
    (run,) = GCRun.objects.filter(experiment=experiment)
    assert (run.reason, run.state) == (GCReason.EXPERIMENT_TERMINAL, RunState.SUCCEEDED)
    assert f"experiment {experiment.pk} COMPLETED" in result.stdout
    retained = set()
    for trial_id in {c.trial_id for c in checkpoints}:
        of_trial = [c for c in checkpoints if c.trial_id == trial_id]
        retained.add(min(of_trial, key=lambda c: (c.validation_metric, c.steps_completed)).pk)
        retained.add(max(of_trial, key=lambda c: c.steps_completed).pk)
    assert {c.pk: c.state for c in checkpoints} == {
        c.pk: "COMPLETED" if c.pk in retained else "DELETED" for c in checkpoints
    }
    assert run.deleted == len(checkpoints) - len(retained) > 0
    kept = [c for c in checkpoints if c.state == "COMPLETED"]
    for checkpoint in kept:
        directory = host_path / str(checkpoint.uuid)
        assert set(checkpoint.resources) == PYTORCH_FILES
        for relative, size in checkpoint.resources.items():
            assert (directory / relative).stat().st_size == size
        state = pickle.loads((directory / "state-dict.pth").read_bytes())  # noqa: S301
        assert set(state) == PYTORCH_STATE_KEYS
        metadata = json.loads((directory / "metadata.json").read_text())
        assert metadata["steps_completed"] == checkpoint.steps_completed
    for checkpoint in checkpoints:
        if checkpoint.state == "DELETED":
            assert not (host_path / str(checkpoint.uuid)).exists()
