"""A small Python client of the ckptweb REST API, for training scripts and the ``ckpt`` CLI.

Only needs ``requests``; it never imports Django. Configure it with arguments, the
environment (``CKPTWEB_URL``, ``CKPTWEB_TOKEN``) or ``ckpt login``'s stored credentials
(``ckptweb.client.credentials``)::

    from ckptweb.client import Client

    api = Client()                      # CKPTWEB_URL / CKPTWEB_TOKEN, else `ckpt login`'s
    experiment = api.create_experiment({"name": "mnist", "searcher": {"metric": "loss"}})
    trial = api.create_trial(experiment["id"], {"lr": 0.1})
    api.report_validation(trial["id"], 100, {"loss": 0.42})
    api.report_checkpoint(trial["id"], 100, resources={"state-dict.pth": 1234})

Run trials in ``with`` blocks and the experiment ends by itself (``ckptweb.client.lifecycle``)::

    with api.experiment("mnist", {"searcher": {"metric": "loss"}}) as experiment:
        with api.trial(experiment["id"], {"lr": 0.1}) as trial:   # COMPLETED, or ERROR
            api.report_validation(trial["id"], 100, {"loss": 0.42})

Every failed call raises ``ApiError`` (``ckptweb.client.errors``) whose message is the
server's one-line ``message``. Downloads (resume, extraction, size checks) are
``ckptweb.client.download``; the registry's calls ``ckptweb.client.registry``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from ckptweb.client.batch import BatchCalls
from ckptweb.client.credentials import load_credentials
from ckptweb.client.download import Progress, download_archive
from ckptweb.client.errors import ApiError, DownloadInterrupted, network_reason, response_error
from ckptweb.client.lifecycle import LifecycleCalls
from ckptweb.client.registry import RegistryCalls
from ckptweb.client.upload import UploadCalls
from ckptweb.lib.units import human_bytes

DEFAULT_URL = "http://127.0.0.1:8000"
#: The end states of every server-side run (GC runs, storage scans, orphan deletions).
RUN_TERMINAL_STATES = ("SUCCEEDED", "FAILED")
#: What "progress" means when following a run.
PROGRESS_FIELDS = ("state", "total", "deleted", "failed")


def human_size(size: int | None) -> str:
    """``1536`` → ``1.5 KiB`` (``ckptweb.lib.units``, as the pages say it)."""
    return "-" if size is None else human_bytes(size)


class Client(BatchCalls, RegistryCalls, LifecycleCalls, UploadCalls):
    """The ckptweb REST API (``/api/v1/``) over one ``requests`` session.

    The model registry's calls come from ``ckptweb.client.registry.RegistryCalls``; trial
    states and the ``trial``/``experiment`` blocks from ``ckptweb.client.lifecycle``;
    ``upload_checkpoint`` from ``ckptweb.client.upload.UploadCalls``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 60,
        session: requests.Session | None = None,
    ):
        url = url or os.environ.get("CKPTWEB_URL")
        if token is None:
            token = os.environ.get("CKPTWEB_TOKEN")
        stored = load_credentials() if url is None or token is None else None
        if stored is not None and url is None:
            url = stored["url"]
        # The stored token goes only to the server it was made on.
        if stored is not None and token is None and url.rstrip("/") == stored["url"].rstrip("/"):
            token = stored["token"]
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.token = token or ""
        self.timeout = timeout
        self.session = session or requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"Token {self.token}"
        self.session.headers.setdefault("Accept", "application/json")

    # --- plumbing ------------------------------------------------------------------------

    def api_url(self, path: str) -> str:
        return f"{self.url}/api/v1/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs) -> dict:
        """One JSON call; raises ApiError with the server's message on any failure."""
        response = self.send(method, self.api_url(path), **kwargs)
        if response.status_code >= 400:
            raise response_error(response)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"{method} {path}: expected JSON, got {response.headers.get('Content-Type')}",
                response.status_code,
            ) from None

    def send(self, method: str, url: str, **kwargs) -> requests.Response:
        """One request of the session (any status); ApiError only when the server is
        unreachable."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach {self.url}: {network_reason(exc)}") from None

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every result of a paginated list, following ``next`` links."""
        params = {key: value for key, value in (params or {}).items() if value is not None}
        page = self.request("GET", path, params=params)
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            response = self.send("GET", page["next"])
            if response.status_code >= 400:
                raise response_error(response)
            page = response.json()

    # --- experiments ---------------------------------------------------------------------

    def list_experiments(self, state: str | None = None, ordering: str | None = None):
        """Experiments, newest first unless ``ordering`` says otherwise."""
        return self.paginate("experiments", {"state": state, "ordering": ordering})

    def create_experiment(self, config: dict | str, name: str | None = None) -> dict:
        """Create an experiment from a config mapping or YAML text; you become its owner."""
        body = {"config": config}
        if name:
            body["name"] = name
        return self.request("POST", "experiments", json=body)

    def get_experiment(self, experiment_id: int) -> dict:
        return self.request("GET", f"experiments/{experiment_id}")

    def set_experiment_state(self, experiment_id: int, state: str) -> dict:
        """Change the state; a terminal state starts GC (see the result's ``gc_run``)."""
        return self.request("PATCH", f"experiments/{experiment_id}", json={"state": state})

    def delete_experiment(self, experiment_id: int) -> dict:
        """Delete the experiment's files and rows; returns the GC run."""
        return self.request("DELETE", f"experiments/{experiment_id}")["gc_run"]

    def list_checkpoints(
        self,
        experiment_id: int,
        ordering: str | None = None,
        state: str | None = None,
        trial: int | None = None,
    ) -> Iterator[dict]:
        """The experiment's checkpoints (metric ordering puts unmeasured ones last)."""
        params = {"ordering": ordering, "state": state, "trial": trial}
        return self.paginate(f"experiments/{experiment_id}/checkpoints", params)

    def best_checkpoints(self, experiment_id: int, limit: int) -> list[dict]:
        """The ``limit`` best COMPLETED checkpoints by the experiment's validation metric."""
        experiment = self.get_experiment(experiment_id)
        ordering = "validation_metric" if experiment["smaller_is_better"] else "-validation_metric"
        best = []
        for checkpoint in self.list_checkpoints(experiment_id, ordering, state="COMPLETED"):
            if checkpoint["validation_metric"] is None or len(best) >= limit:
                break
            best.append(checkpoint)
        return best

    def best_checkpoint(self, experiment_id: int, trial: int | None = None) -> dict:
        """The best live checkpoint of the experiment (or one trial) by its searcher metric."""
        params = {"trial": trial} if trial is not None else {}
        return self.request("GET", f"experiments/{experiment_id}/best-checkpoint", params=params)

    def gc_preview(self, experiment_id: int, **policy: int | None) -> dict:
        """What a policy would keep and delete; omitted values are the current policy's."""
        params = {key: value for key, value in policy.items() if value is not None}
        return self.request("GET", f"experiments/{experiment_id}/gc-preview", params=params)

    def set_gc_policy(
        self,
        experiment_id: int,
        save_experiment_best: int,
        save_trial_best: int,
        save_trial_latest: int,
    ) -> dict:
        """Save a GC policy and start the run that applies it; returns the run."""
        body = {
            "save_experiment_best": save_experiment_best,
            "save_trial_best": save_trial_best,
            "save_trial_latest": save_trial_latest,
        }
        return self.request("PUT", f"experiments/{experiment_id}/gc-policy", json=body)["gc_run"]

    # --- trials, validations, checkpoints ------------------------------------------------

    def create_trial(self, experiment_id: int, hparams: dict | None = None) -> dict:
        return self.request(
            "POST", f"experiments/{experiment_id}/trials", json={"hparams": hparams or {}}
        )

    def get_trial(self, trial_id: int) -> dict:
        return self.request("GET", f"trials/{trial_id}")

    def report_validation(self, trial_id: int, steps_completed: int, metrics: dict) -> dict:
        """Report validation metrics (finite numbers) after ``steps_completed`` steps."""
        body = {"steps_completed": steps_completed, "metrics": metrics}
        return self.request("POST", f"trials/{trial_id}/validations", json=body)

    def report_metrics(
        self, trial_id: int, group: str, steps_completed: int, metrics: dict
    ) -> dict:
        """Report metrics of ``group`` (``training``, or any name but ``validation``, which
        ``report_validation`` reports); charted on the trial page, never read by retention."""
        body = {"group": group, "steps_completed": steps_completed, "metrics": metrics}
        return self.request("POST", f"trials/{trial_id}/metrics", json=body)

    def list_metrics(self, trial_id: int, group: str | None = None) -> Iterator[dict]:
        """The trial's reports of groups other than validations (only ``group``'s if given),
        by group and steps."""
        params = {"group": group} if group else {}
        return self.paginate(f"trials/{trial_id}/metrics", params=params)

    def report_checkpoint(
        self,
        trial_id: int,
        steps_completed: int,
        resources: dict[str, int] | None = None,
        metadata: dict | None = None,
        uuid: str | None = None,
    ) -> dict:
        """Report a checkpoint whose files are already on storage; returns {id, uuid, state}."""
        body: dict = {"steps_completed": steps_completed}
        if resources is not None:
            body["resources"] = resources
        if metadata is not None:
            body["metadata"] = metadata
        if uuid is not None:
            body["uuid"] = str(uuid)
        return self.request("POST", f"trials/{trial_id}/checkpoints", json=body)

    def get_checkpoint(self, uuid: str) -> dict:
        return self.request("GET", f"checkpoints/{uuid}")

    def update_checkpoint(self, uuid: str, **changes) -> dict:
        """PATCH ``metadata`` (replaces it) and/or ``protected``."""
        return self.request("PATCH", f"checkpoints/{uuid}", json=changes)

    def delete_checkpoint(self, uuid: str) -> dict:
        """Delete one checkpoint's files; returns the GC run."""
        return self.request("DELETE", f"checkpoints/{uuid}")["gc_run"]

    # --- GC runs -------------------------------------------------------------------------

    def get_gc_run(self, run_id: int) -> dict:
        return self.request("GET", f"gc-runs/{run_id}")

    def wait_for(
        self,
        path: str,
        poll: float = 0.5,
        timeout: float | None = None,
        on_change: Callable[[dict], None] | None = None,
    ) -> dict:
        """Poll a run at ``path`` (a GC run, scan or orphan deletion) until it has finished.

        Every run has the server's one lifecycle (PENDING -> RUNNING -> SUCCEEDED | FAILED);
        ``on_change`` sees the body whenever its progress (``PROGRESS_FIELDS``) changed.
        Returns the last body.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            run = self.request("GET", path)
            progress = tuple(run.get(field) for field in PROGRESS_FIELDS)
            if on_change is not None and progress != last:
                on_change(run)
            last = progress
            if run["state"] in RUN_TERMINAL_STATES:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(f"{path} is still {run['state']} after {timeout:g} s")
            time.sleep(poll)

    def wait_for_gc_run(
        self,
        run_id: int,
        poll: float = 0.5,
        timeout: float | None = None,
        on_change: Callable[[dict], None] | None = None,
    ) -> dict:
        """Poll a GC run until it SUCCEEDED or FAILED; ``on_change`` sees each new state."""
        return self.wait_for(f"gc-runs/{run_id}", poll, timeout, on_change)

    # --- downloads -----------------------------------------------------------------------

    def download_checkpoint(
        self,
        uuid: str,
        output_dir: str | os.PathLike = ".",
        progress: Progress | None = None,
        retries: int = 3,
    ) -> Path:
        """Download a checkpoint's tar and extract it into ``output_dir/<uuid>/``.

        The archive is extracted as it streams (into ``.<uuid>.extracting/``); an
        interrupted transfer resumes with a Range request (guarded by If-Range), up to
        ``retries`` times, and a later call picks up what an earlier one left behind.
        Extracted file sizes are checked against the checkpoint's ``resources``. Returns the
        directory.
        """
        checkpoint = self.get_checkpoint(uuid)
        path = f"checkpoints/{checkpoint['uuid']}/download"
        return download_archive(self, checkpoint, path, output_dir, progress, retries)


def write_checkpoint_files(directory: str | os.PathLike, files: dict[str, bytes]) -> dict:
    """Write ``{relative path: bytes}`` under ``directory``; return resources (path → size).

    For training scripts writing a checkpoint to shared_fs storage before reporting it.
    """
    root = Path(directory)
    resources = {}
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        resources[relative] = len(data)
    return resources


def shared_fs_checkpoint_dir(experiment: dict, uuid: str) -> Path:
    """``host_path[/storage_path]/<uuid>`` of an experiment whose config names shared_fs."""
    storage = (experiment.get("config") or {}).get("checkpoint_storage") or {}
    if storage.get("type") != "shared_fs" or not storage.get("host_path"):
        raise ApiError("the experiment's config has no shared_fs checkpoint_storage")
    root = Path(storage["host_path"])
    if storage.get("storage_path"):
        root = root / str(storage["storage_path"]).strip("/")
    return root / str(uuid)


__all__ = [
    "ApiError",
    "Client",
    "DownloadInterrupted",
    "human_size",
    "shared_fs_checkpoint_dir",
    "write_checkpoint_files",
]
