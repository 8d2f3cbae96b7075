"""``ckpt checkpoint download --best EXPERIMENT_ID [--trial T]`` and its API route."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_downloads_the_best_checkpoint_of_the_experiment(run_ckpt, spec_example, tmp_path):
    # The spec table's best: trial 2, 200.
    best = spec_example.checkpoints.get(validation_metric=0.2)
    result = run_ckpt("checkpoint", "download", "--best", spec_example.pk, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Best checkpoint of experiment {spec_example.pk}: {best.uuid}" in result.stdout
    assert (tmp_path / str(best.uuid) / "state-dict.pth").is_file()


def test_it_downloads_the_best_of_one_trial(run_ckpt, spec_example, tmp_path):
    first = spec_example.trials.order_by("id").first()
    best = spec_example.checkpoints.get(trial=first, validation_metric=0.4)
    result = run_ckpt(
        "checkpoint", "download", "--best", spec_example.pk, "--trial", first.pk, "-o", tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert str(best.uuid) in result.stdout
    assert (tmp_path / str(best.uuid) / "metadata.json").is_file()


def test_larger_is_better_picks_the_largest(alice_api, spec_example):
    spec_example.smaller_is_better = False
    spec_example.save(update_fields=["smaller_is_better"])
    response = alice_api.get(f"/api/v1/experiments/{spec_example.pk}/best-checkpoint")
    assert response.status_code == 200
    assert response.json()["validation_metric"] == 0.6


def test_deleted_checkpoints_are_never_best(alice_api, spec_example):
    spec_example.checkpoints.filter(validation_metric=0.2).update(state="DELETED")
    response = alice_api.get(f"/api/v1/experiments/{spec_example.pk}/best-checkpoint")
    assert response.json()["validation_metric"] == 0.3


def test_bad_and_missing_input_are_named(run_ckpt, alice_api, spec_example):
    result = run_ckpt("checkpoint", "download", "--best", "999999")
    assert result.returncode == 1
    assert "Experiment 999999 does not exist." in result.stderr
    assert "matches the given query" not in result.stderr
    result = run_ckpt("checkpoint", "download", "--best", "abc")
    assert result.returncode == 1 and "--best takes an experiment id" in result.stderr
    response = alice_api.get(f"/api/v1/experiments/{spec_example.pk}/best-checkpoint?trial=x")
    assert response.status_code == 400 and "trial" in response.json()["message"]
    trial_without_metric = spec_example.trials.create(hparams={})
    response = alice_api.get(
        f"/api/v1/experiments/{spec_example.pk}/best-checkpoint?trial={trial_without_metric.pk}"
    )
    assert response.status_code == 404
    assert "no live checkpoint with a validation metric" in response.json()["message"]


def test_set_gc_policy_summarises_before_a_short_list(run_ckpt, alice, default_storage):
    from experiments import services
    from experiments.models import Experiment

    experiment = Experiment.objects.create(
        name="long", owner=alice, searcher_metric="loss", storage=default_storage
    )
    trial = services.create_trial(experiment)
    for steps in range(1, 61):
        services.report_checkpoint(trial, steps, resources={"w.bin": 1024})
    result = run_ckpt("experiment", "set", "gc-policy", experiment.pk, input="n\n")
    lines = result.stdout.splitlines()
    summary = next(i for i, line in enumerate(lines) if "This policy will delete" in line)
    assert "delete 59 checkpoints (59.0 KiB) and keep 1" in lines[summary]
    assert summary <= 2  # the summary comes before the table
    assert sum(" DELETE" in line for line in lines) == 20
    assert "… and 40 more" in result.stdout
