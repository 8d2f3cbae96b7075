"""``ckpt`` lists that span many pages, through the real executable (issue 17 item 6)."""

from experiments import batch
from tests.factories import make_experiment


def test_list_checkpoints_follows_every_page(run_ckpt, alice, default_storage):
    experiment = make_experiment(alice, default_storage, name="many")
    trial = experiment.trials.create()
    batch.report_checkpoints(trial, [{"steps_completed": i} for i in range(130)])  # 3 pages
    result = run_ckpt("experiment", "list-checkpoints", experiment.pk, "--csv")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert [int(row.split(",")[1]) for row in rows] == list(range(130))


def test_experiment_list_follows_every_page(run_ckpt, alice, default_storage):
    for i in range(60):
        make_experiment(alice, default_storage, name=f"exp-{i}")
    result = run_ckpt("experiment", "list")
    assert result.returncode == 0, result.stderr
    names = {line.split()[1] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert {f"exp-{i}" for i in range(60)} <= names
