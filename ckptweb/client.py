"""A small Python client of the ckptweb REST API, for training scripts and the ``ckpt`` CLI.

Only needs ``requests``; it never imports Django. Configure it with arguments or the
environment (``CKPTWEB_URL``, ``CKPTWEB_TOKEN``)::

    from ckptweb.client import Client

    api = Client()                      # CKPTWEB_URL / CKPTWEB_TOKEN
    experiment = api.create_experiment({"name": "mnist", "searcher": {"metric": "loss"}})
    trial = api.create_trial(experiment["id"], {"lr": 0.1})
    api.report_validation(trial["id"], 100, {"loss": 0.42})
    api.report_checkpoint(trial["id"], 100, resources={"state-dict.pth": 1234})

Every failed call raises ``ApiError`` whose message is the server's one-line ``message``.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from ckptweb.client_batch import BatchCalls
from ckptweb.client_registry import RegistryCalls
from ckptweb.units import human_bytes

DEFAULT_URL = "http://127.0.0.1:8000"
CHUNK_SIZE = 1024 * 1024
GC_RUN_TERMINAL_STATES = ("SUCCEEDED", "FAILED")

Progress = Callable[[int, int | None], None]


class ApiError(Exception):
    """A request failed: ``status`` is the HTTP status (None for network errors)."""

    def __init__(self, message: str, status: int | None = None, body: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body or {}


class DownloadInterrupted(ApiError):
    """The archive stream broke off; the ``.part`` file keeps what arrived, to resume."""


def human_size(size: int | None) -> str:
    """``1536`` → ``1.5 KiB`` (``ckptweb.units``, as the pages say it)."""
    return "-" if size is None else human_bytes(size)


def _error_message(response: requests.Response) -> tuple[str, dict]:
    """The server's one-line ``message`` (or a short fallback) and the JSON body."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    if not message:
        message = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if response.status_code == 401:
        message += " (set CKPTWEB_TOKEN or pass --token)"
    return " ".join(str(message).split()), body if isinstance(body, dict) else {}


class Client(BatchCalls, RegistryCalls):
    """The ckptweb REST API (``/api/v1/``) over one ``requests`` session.

    The model registry's calls come from ``ckptweb.client_registry.RegistryCalls``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 60,
        session: requests.Session | None = None,
    ):
        self.url = (url or os.environ.get("CKPTWEB_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("CKPTWEB_TOKEN", "")
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
        response = self._send(method, self.api_url(path), **kwargs)
        if response.status_code >= 400:
            message, body = _error_message(response)
            raise ApiError(message, response.status_code, body)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"{method} {path}: expected JSON, got {response.headers.get('Content-Type')}",
                response.status_code,
            ) from None

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach {self.url}: {_network_reason(exc)}") from None

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every result of a paginated list, following ``next`` links."""
        params = {key: value for key, value in (params or {}).items() if value is not None}
        page = self.request("GET", path, params=params)
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            response = self._send("GET", page["next"])
            if response.status_code >= 400:
                message, body = _error_message(response)
                raise ApiError(message, response.status_code, body)
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

    def wait_for_gc_run(
        self,
        run_id: int,
        poll: float = 0.5,
        timeout: float | None = None,
        on_change: Callable[[dict], None] | None = None,
    ) -> dict:
        """Poll a GC run until it SUCCEEDED or FAILED; ``on_change`` sees each new state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            run = self.get_gc_run(run_id)
            snapshot = (run["state"], run["deleted"], run["failed"], run["total"])
            if on_change is not None and snapshot != last:
                on_change(run)
            last = snapshot
            if run["state"] in GC_RUN_TERMINAL_STATES:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(f"GC run {run_id} is still {run['state']} after {timeout:g} s")
            time.sleep(poll)

    # --- downloads -----------------------------------------------------------------------

    def download_checkpoint(
        self,
        uuid: str,
        output_dir: str | os.PathLike = ".",
        progress: Progress | None = None,
        retries: int = 3,
    ) -> Path:
        """Download a checkpoint's tar and extract it into ``output_dir/<uuid>/``.

        The archive streams into ``<uuid>.tar.part``; an interrupted transfer resumes with
        a Range request (guarded by If-Range), up to ``retries`` times, and a later call
        picks up a ``.part`` left behind. Extracted file sizes are checked against the
        checkpoint's ``resources``. Returns the directory.
        """
        checkpoint = self.get_checkpoint(uuid)
        return self._download(
            checkpoint, f"checkpoints/{checkpoint['uuid']}/download", output_dir, progress, retries
        )

    def _download(
        self,
        checkpoint: dict,
        archive_path: str,
        output_dir: str | os.PathLike,
        progress: Progress | None,
        retries: int,
    ) -> Path:
        """Fetch the tar at ``archive_path`` (resumable) and extract it into ``<uuid>/``."""
        uuid = checkpoint["uuid"]
        output = Path(output_dir)
        target = output / uuid
        if target.exists() and any(target.iterdir()):
            raise ApiError(f"{target} already exists and is not empty; remove it first")
        output.mkdir(parents=True, exist_ok=True)
        part = output / f"{uuid}.tar.part"
        attempt = 0
        while True:
            try:
                self._fetch_archive(uuid, archive_path, part, progress)
                break
            except DownloadInterrupted:
                attempt += 1
                if attempt > retries:
                    raise
                time.sleep(min(0.2 * 2**attempt, 5))
        try:
            extract_checkpoint(part, target, uuid, checkpoint.get("resources") or {})
        finally:
            part.unlink(missing_ok=True)
            _etag_path(part).unlink(missing_ok=True)
        return target

    def _fetch_archive(
        self, uuid: str, archive_path: str, part: Path, progress: Progress | None
    ) -> None:
        """Bring ``part`` to the complete archive, resuming from its current size."""
        offset = part.stat().st_size if part.exists() else 0
        etag_file = _etag_path(part)
        headers = {"Accept": "application/x-tar"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if etag_file.exists():
                headers["If-Range"] = etag_file.read_text().strip()
        url = self.api_url(archive_path)
        response = self._send("GET", url, headers=headers, stream=True)
        with response:
            if response.status_code == 416 and offset:
                total = _content_range_total(response.headers.get("Content-Range", ""))
                if total == offset:
                    return  # the .part already holds everything
                part.unlink()
                raise DownloadInterrupted("partial download no longer matches; starting over")
            if response.status_code >= 400:
                message, body = _error_message(response)
                raise ApiError(message, response.status_code, body)
            if response.status_code == 206:
                start = _content_range_start(response.headers.get("Content-Range", ""))
                if start != offset:
                    part.unlink()
                    raise DownloadInterrupted("server resumed at the wrong offset; starting over")
                total = _content_range_total(response.headers.get("Content-Range", ""))
                mode = "ab"
            else:
                offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            if response.headers.get("ETag"):
                etag_file.write_text(response.headers["ETag"])
            done = offset
            try:
                with open(part, mode) as out:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            except requests.RequestException:
                raise DownloadInterrupted(
                    f"download of {uuid} interrupted after {done} bytes; run again to resume"
                ) from None
            except OSError as exc:
                raise ApiError(f"cannot write {part}: {exc.strerror or exc}") from None
            if total is not None and done != total:
                raise DownloadInterrupted(
                    f"download of {uuid} interrupted after {done} of {total} bytes; "
                    "run again to resume"
                )


def _network_reason(exc: requests.RequestException) -> str:
    """A short reason for a network failure: ``connection refused``, ``timed out``…"""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip().lower()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


def _etag_path(part: Path) -> Path:
    return part.with_name(part.name + ".etag")


def _content_range_start(value: str) -> int | None:
    """``bytes 100-199/200`` → 100."""
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _content_range_total(value: str) -> int | None:
    """``bytes 100-199/200`` or ``bytes */200`` → 200."""
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def _member_path(name: str, uuid: str) -> str:
    """A tar member's path inside the checkpoint, or ValueError when it is unsafe."""
    path = name[2:] if name.startswith("./") else name
    if path.startswith(uuid + "/"):
        path = path[len(uuid) + 1 :]
    normalised = posixpath.normpath(path) if path else ""
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or normalised.startswith("..")
        or any(part in ("", ".", "..") for part in path.rstrip("/").split("/"))
    ):
        raise ValueError(f"unsafe path in archive: {name!r}")
    return normalised


def extract_checkpoint(archive: Path, target: Path, uuid: str, resources: dict) -> None:
    """Extract a checkpoint tar into ``target`` (regular files only, paths kept inside),
    then check each file's size against ``resources``. Leaves nothing behind on failure."""
    staging = target.with_name(f".{target.name}.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        sizes = {}
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ApiError(f"archive entry {member.name!r} is not a regular file")
                try:
                    relative = _member_path(member.name, uuid)
                except ValueError as exc:
                    raise ApiError(str(exc)) from None
                destination = staging / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK_SIZE)
                sizes[relative] = destination.stat().st_size
        check_sizes(sizes, resources)
        if target.exists():
            target.rmdir()  # empty (checked before downloading)
        staging.rename(target)
    except tarfile.TarError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ApiError(f"the downloaded archive is damaged: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_sizes(sizes: dict[str, int], resources: dict[str, int]) -> None:
    """Every resource is present with its recorded size; raise ApiError otherwise."""
    for path, expected in sorted(resources.items()):
        if path not in sizes:
            raise ApiError(f"{path} is missing from the downloaded checkpoint")
        if sizes[path] != expected:
            raise ApiError(f"{path} is {sizes[path]} bytes, but the checkpoint records {expected}")


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
    "check_sizes",
    "extract_checkpoint",
    "human_size",
    "shared_fs_checkpoint_dir",
    "write_checkpoint_files",
]
