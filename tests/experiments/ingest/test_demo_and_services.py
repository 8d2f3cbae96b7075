"""Demo data and the reporting services behind the ingestion API."""

import json
import math
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from experiments import services
from experiments.demo import SPEC_EXAMPLE, SPEC_TABLE
from experiments.models import Checkpoint, Experiment
from tests.spec import PYTORCH_FILES

CONFIG = {"name": "e", "searcher": {"metric": "loss"}}


@pytest.mark.django_db
def test_load_demo_is_idempotent_and_writes_real_files(
    alice, default_storage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the GC run of resnet18
        call_command("load_demo", owner="alice")
    counts = (Experiment.objects.count(), Checkpoint.objects.count())
    call_command("load_demo", owner="alice")
    assert (Experiment.objects.count(), Checkpoint.objects.count()) == counts
    assert counts[0] == 3 and 200 <= counts[1] <= 600
    from experiments.models import ModelVersion

    versions = list(ModelVersion.objects.order_by("version"))
    assert [(v.model.name, v.version) for v in versions] == [
        ("resnet18-cifar10", 1),
        ("resnet18-cifar10", 2),
    ]
    assert versions[1].checkpoint.validation_metric <= versions[0].checkpoint.validation_metric

    spec = Experiment.objects.get(name=SPEC_EXAMPLE)
    rows = [
        (c.trial_id, c.steps_completed, c.validation_metric)
        for c in spec.checkpoints.order_by("id")
    ]
    first_trial = rows[0][0]
    assert [(t - first_trial + 1, s, m) for t, s, m in rows] == SPEC_TABLE
    assert spec.smaller_is_better is True

    # resnet18 has ended and GC has run; bert is still training (its last trial ACTIVE).
    resnet = Experiment.objects.get(name="resnet18-cifar10")
    assert resnet.state == "COMPLETED" and set(resnet.trials.values_list("state", flat=True)) == {
        "COMPLETED"
    }
    assert resnet.checkpoints.filter(state="DELETED").count() > resnet.checkpoints.count() // 2
    bert = Experiment.objects.get(name="bert-base-glue-sst2")
    assert bert.state == "ACTIVE" and bert.trials.filter(state="ACTIVE").count() == 1
    for checkpoint in Checkpoint.objects.exclude(state="DELETED").order_by("id")[:50]:
        directory = Path(default_storage.host_path) / str(checkpoint.uuid)
        assert set(checkpoint.resources) == PYTORCH_FILES
        for relpath, size in checkpoint.resources.items():
            assert (directory / relpath).stat().st_size == size
        assert checkpoint.size_bytes == sum(checkpoint.resources.values())
        metadata = json.loads((directory / "metadata.json").read_text())
        assert metadata["steps_completed"] == checkpoint.steps_completed
        with zipfile.ZipFile(directory / "state-dict.pth") as archive:
            assert "archive/data.pkl" in archive.namelist()


@pytest.mark.django_db
def test_demo_curves_look_like_training(alice, default_storage):
    call_command("load_demo", owner="alice")
    resnet = Experiment.objects.get(name="resnet18-cifar10")
    metrics = list(
        resnet.checkpoints.exclude(validation_metric=None)
        .order_by("trial_id", "steps_completed")
        .values_list("trial_id", "validation_metric")
    )
    first_trial = metrics[0][0]
    curve = [m for t, m in metrics if t == first_trial]
    assert curve[0] > curve[-1]  # loss goes down
    assert all(math.isfinite(m) for _, m in metrics)


@pytest.mark.django_db
@pytest.mark.parametrize("validation_first", [True, False])
def test_validation_links_whichever_comes_first(alice, default_storage, validation_first):
    experiment = services.create_experiment(alice, CONFIG)
    trial = services.create_trial(experiment)
    if validation_first:
        services.report_validation(trial, 100, {"loss": 0.5, "acc": 0.9})
        checkpoint = services.report_checkpoint(trial, 100, {"a.bin": 3})
    else:
        checkpoint = services.report_checkpoint(trial, 100, {"a.bin": 3})
        services.report_validation(trial, 100, {"loss": 0.5, "acc": 0.9})
    checkpoint.refresh_from_db()
    assert checkpoint.validation_metric == 0.5
    # The latest validation at the step wins.
    services.report_validation(trial, 100, {"loss": 0.25})
    checkpoint.refresh_from_db()
    assert checkpoint.validation_metric == 0.25
    # Other steps and other trials are untouched.
    services.report_validation(trial, 200, {"loss": 0.1})
    other = services.create_trial(experiment)
    services.report_validation(other, 100, {"loss": 0.01})
    checkpoint.refresh_from_db()
    assert checkpoint.validation_metric == 0.25


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resources": {"../x": 1}}, "resources"),
        ({"resources": {"/etc/passwd": 1}}, "resources"),
        ({"resources": {"a": -1}}, "resources"),
        ({"resources": {"a": "big"}}, "resources"),
        ({"resources": ["a"]}, "resources"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"metadata": {"blob": "x" * (1024 * 1024)}}, "metadata"),
    ],
)
def test_report_checkpoint_rejects_bad_input(alice, default_storage, kwargs, field):
    trial = services.create_trial(services.create_experiment(alice, CONFIG))
    with pytest.raises(services.ReportError) as info:
        services.report_checkpoint(trial, 1, **kwargs)
    assert info.value.field == field
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_duplicate_uuid_is_rejected(alice, default_storage):
    trial = services.create_trial(services.create_experiment(alice, CONFIG))
    first = services.report_checkpoint(trial, 1)
    with pytest.raises(services.ReportError) as info:
        services.report_checkpoint(trial, 2, uuid=first.uuid)
    assert info.value.field == "uuid"


@pytest.mark.django_db
@pytest.mark.parametrize("value", [float("nan"), float("inf"), "0.5", True, None])
def test_metrics_must_be_finite_numbers(alice, default_storage, value):
    trial = services.create_trial(services.create_experiment(alice, CONFIG))
    with pytest.raises(services.ReportError) as info:
        services.report_validation(trial, 1, {"loss": value})
    assert info.value.field == "metrics"
