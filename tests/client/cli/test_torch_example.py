"""examples/train_torch.py with real PyTorch: trained, uploaded (ckptweb.integrations.torch),
registered, GC'd, then downloaded by name with ``ckpt model download`` and loaded outside ckptweb.

Skips when torch is not installed (the ``torch`` extra), fails under
CKPTWEB_REQUIRE_SERVICES=1 (CI installs the extra through ``.ci/run``).
"""

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.models import Checkpoint, Experiment, ModelVersion
from storage.models import StorageConfig
from tests import REPO
from tests.factories import client_for
from tests.servers import missing_service
from tests.spec import PYTORCH_STATE_KEYS

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = REPO / "examples" / "train_torch.py"
LAYOUT = {"state-dict.pth", "code/model_def.py", "metadata.json"}


@pytest.fixture
def torch():
    try:
        import torch
    except ImportError:
        missing_service("torch is not installed: pip install -e '.[torch]' (torch==2.13.0 CPU)")
    torch.set_num_threads(1)
    return torch


def load_module(path: Path):
    """``code/model_def.py`` of the downloaded checkpoint, imported from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"model_def_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_register_gc_download_by_name_and_predict(
    torch, live_server, token, run_ckpt, tmp_path, default_storage, alice
):
    host_path = tmp_path / "shared"
    StorageConfig.objects.create(name="team-fs", type="shared_fs", host_path=str(host_path))
    summary_file = tmp_path / "summary.json"
    env = {**os.environ, "CKPTWEB_URL": live_server.url, "CKPTWEB_TOKEN": token}
    env |= {"PYTHONPATH": str(REPO), "CKPTWEB_CACHE_DIR": str(tmp_path / "cache")}  # this ckptweb
    trained = subprocess.run(
        [sys.executable, str(EXAMPLE), "--host-path", str(host_path), "--model", "mlp-prod"]
        + ["--steps", "200", "--every", "50", "--save", "0,0,0", "--summary", str(summary_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(summary_file.read_text())

    # Reported through the API: two trials, four validations and checkpoints each.
    experiment = Experiment.objects.get(pk=summary["experiment_id"])
    assert experiment.state == "COMPLETED"
    checkpoints = list(Checkpoint.objects.filter(experiment=experiment))
    assert len(checkpoints) == 8
    assert all(c.validation_metric is not None for c in checkpoints)
    best = min(checkpoints, key=lambda c: (c.validation_metric, c.steps_completed))
    assert str(best.uuid) == summary["checkpoint"]
    version = ModelVersion.objects.get(model__name="mlp-prod")
    assert (version.version, version.checkpoint_id) == (1, best.pk)

    # Policy 0/0/0 deleted everything except the registered checkpoint.
    states = {c.pk: Checkpoint.objects.get(pk=c.pk).state for c in checkpoints}
    assert {pk for pk, state in states.items() if state != "DELETED"} == {best.pk}
    left = {p.name for p in host_path.iterdir()}
    assert left == {str(best.uuid)}
    stored = {
        str(p.relative_to(host_path / str(best.uuid))): p.read_bytes()
        for p in (host_path / str(best.uuid)).rglob("*")
        if p.is_file()
    }
    assert set(stored) == LAYOUT

    # Deleting the checkpoint or its experiment is refused while the version pins it.
    refused = run_ckpt("checkpoint", "delete", best.uuid, "--yes")
    assert refused.returncode == 1 and "mlp-prod v1" in refused.stderr
    api = client_for(alice, api=True)  # in-process: a socket to live_server holds a DB session
    conflict = api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert conflict.status_code == 409 and "mlp-prod v1" in conflict.json()["message"]
    assert {p.name for p in host_path.iterdir()} == {str(best.uuid)}

    # Downloaded by name: byte-identical files in Determined's layout.
    out = tmp_path / "download"
    downloaded = run_ckpt("model", "download", "mlp-prod", "-o", out)
    assert downloaded.returncode == 0, downloaded.stderr
    directory = out / str(best.uuid)
    files = {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }
    assert files == stored

    # Rebuilt from code/model_def.py, weights loaded safely: identical predictions.
    state = torch.load(directory / "state-dict.pth", map_location="cpu", weights_only=True)
    assert set(state) == PYTORCH_STATE_KEYS
    model = load_module(directory / "code" / "model_def.py").build_model()
    model.load_state_dict(state["models_state_dict"][0])
    model.eval()
    with torch.no_grad():
        predictions = model(torch.tensor(summary["probe_inputs"])).tolist()
    assert predictions == summary["predictions"]
    metadata = json.loads(files["metadata.json"])
    assert metadata["framework"] == f"torch-{torch.__version__}"
    assert metadata["steps_completed"] == best.steps_completed

    # The checkpoint page's load snippet, run verbatim in a shell.
    pages = client_for(alice)
    page = pages.get(f"/checkpoints/{best.uuid}/").content.decode()
    snippet = html.unescape(
        re.search(r'<pre class="code" id="load-snippet">(.*?)</pre>', page, re.S).group(1)
    )
    snippet = snippet.replace("http://testserver", live_server.url)
    workdir = tmp_path / "snippet"
    workdir.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    ran = subprocess.run(
        ["bash", "-e", "-c", snippet],
        cwd=workdir,
        env={**env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert "'models_state_dict'" in ran.stdout and "'callbacks'" in ran.stdout
