"""examples/train_lightning.py run as a user would: the experiment, its metrics and its
checkpoints are in ckptweb, COMPLETED with the policy applied (resuming is tested in-process,
tests/integrations/test_lightning.py).

Skips when Lightning is not installed (the ``lightning`` extra), fails under
CKPTWEB_REQUIRE_SERVICES=1 (CI installs the extra through ``.ci/run``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from ckptweb.client import Client
from experiments.models import Checkpoint, Experiment, GCRun, Validation
from tests import REPO
from tests.servers import missing_service

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = REPO / "examples" / "train_lightning.py"


@pytest.mark.slow
def test_the_example_trains_into_ckptweb(live_server, token, default_storage, tmp_path):
    if importlib.util.find_spec("lightning") is None:
        missing_service("lightning is not installed: pip install -e '.[lightning]'")
    env = {**os.environ, "CKPTWEB_URL": live_server.url, "CKPTWEB_TOKEN": token}
    env |= {"PYTHONPATH": str(REPO), "CKPTWEB_CACHE_DIR": str(tmp_path / "cache")}

    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--name", "example", "--root", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    experiment = Experiment.objects.get(name="example")
    assert f"experiment {experiment.pk} COMPLETED" in done.stdout
    assert experiment.state == "COMPLETED"
    assert experiment.trials.get().hparams == {"lr": 0.1}  # the module's save_hyperparameters()
    assert Validation.objects.filter(trial__experiment=experiment).count() == 3
    (run,) = GCRun.objects.filter(experiment=experiment)
    api = Client(url=live_server.url, token=token)
    assert api.wait_for_gc_run(run.pk, poll=0.1, timeout=60)["state"] == "SUCCEEDED"
    checkpoints = Checkpoint.objects.filter(experiment=experiment)
    kept = {max(checkpoints, key=lambda c: c.steps_completed).pk}
    kept.add(min(checkpoints, key=lambda c: (c.validation_metric, c.steps_completed)).pk)
    assert checkpoints.count() == 3  # one per epoch
    assert {c.pk for c in checkpoints if c.state == "COMPLETED"} == kept  # best and latest
