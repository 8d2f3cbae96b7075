"""``ckpt trial set-state`` (the real executable against a live server)."""

import pytest

from experiments.models import Experiment, GCRun, Trial
from tests.client.cli.helpers import assert_one_line_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_set_state_ends_trials_and_the_last_ends_the_experiment(run_ckpt, populated):
    experiment, _ = populated
    first, second = Trial.objects.filter(experiment=experiment).order_by("id")
    paused = run_ckpt("trial", "set-state", first.pk, "paused")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == f"Trial {first.pk}: PAUSED\n"
    assert run_ckpt("trial", "set-state", second.pk, "COMPLETED").returncode == 0
    assert Experiment.objects.get(pk=experiment.pk).state == "ACTIVE"
    assert not GCRun.objects.filter(experiment=experiment).exists()

    result = run_ckpt("trial", "set-state", first.pk, "CANCELED")
    assert result.returncode == 0, result.stderr
    (run,) = GCRun.objects.filter(experiment=experiment)
    assert result.stdout.splitlines() == [
        f"Trial {first.pk}: CANCELED",
        f"Experiment {experiment.pk} ended COMPLETED (its last running trial ended); "
        f"GC run {run.pk} applies its policy.",
    ]
    assert (Trial.objects.get(pk=first.pk).state, Trial.objects.get(pk=second.pk).state) == (
        "CANCELED",
        "COMPLETED",
    )
    assert Experiment.objects.get(pk=experiment.pk).state == "COMPLETED"


def test_set_state_errors_are_one_line(run_ckpt, populated):
    experiment, _ = populated
    trial = Trial.objects.filter(experiment=experiment).first()
    assert_one_line_error(
        run_ckpt("trial", "set-state", trial.pk, "DONE"),
        "state",
        "ACTIVE, PAUSED, COMPLETED, CANCELED, ERROR",
    )
    assert run_ckpt("trial", "set-state", trial.pk, "ERROR").returncode == 0
    assert_one_line_error(
        run_ckpt("trial", "set-state", trial.pk, "ACTIVE"),
        f"trial {trial.pk} is already ERROR: an ended trial cannot change.",
    )
    assert_one_line_error(run_ckpt("trial", "set-state", 999999, "ERROR"), "999999")
    assert Trial.objects.get(pk=trial.pk).state == "ERROR"
