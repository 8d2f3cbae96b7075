"""One training run as ckptweb sees it: an experiment, its one trial, and their end.

The integrations' shared part (``ckptweb.integrations``'s docstring): ``experiment_config``
turns the ``config=`` dict a callback takes into an experiment config, and ``Run`` holds
the client's own lifecycle blocks (``Client.experiment`` around ``Client.trial``,
``ckptweb.client.lifecycle``) open across a framework's hooks, so ending a run is exactly
what leaving those ``with`` blocks does.
"""

from __future__ import annotations

import atexit
import sys
from contextlib import ExitStack

from ckptweb.client import Client
from ckptweb.client.errors import ApiError

#: The keys ``config=`` may hold (anything else is a mistake worth naming).
CONFIG_KEYS = ("metric", "smaller_is_better", "policy", "storage", "description", "hparams")
POLICY_KEYS = ("save_experiment_best", "save_trial_best", "save_trial_latest")


def experiment_config(config: dict | None, default_metric: str) -> dict:
    """The experiment config (Determined's shape) of an integration's ``config=`` dict."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"config: unknown key {unknown[0]!r}; use {', '.join(CONFIG_KEYS)}")
    searcher = {"metric": config.get("metric") or default_metric}
    if "smaller_is_better" in config:
        searcher["smaller_is_better"] = bool(config["smaller_is_better"])
    result: dict = {"searcher": searcher}
    storage = dict(config.get("storage") or {})
    policy = config.get("policy") or {}
    unknown = sorted(set(policy) - set(POLICY_KEYS))
    if unknown:
        raise ValueError(f"config.policy: unknown key {unknown[0]!r}; use {', '.join(POLICY_KEYS)}")
    storage.update(policy)
    if storage:
        result["checkpoint_storage"] = storage
    if config.get("description"):
        result["description"] = config["description"]
    return result


def trial_id(trial) -> int:
    """The id of a trial given as the dict ``Client.trial()`` yields, or as an id."""
    return int(trial["id"] if isinstance(trial, dict) else trial)


def find_experiment(client: Client, name: str) -> dict:
    """The newest experiment of exactly this name visible to the client."""
    for experiment in client.paginate("experiments", {"name": name, "ordering": "-id"}):
        if experiment["name"] == name:
            return experiment
    raise ApiError(f"no experiment is named {name!r}", 404)


class Run:
    """An experiment with one trial, open until ``end``: what a callback starts and ends.

    A process that exits with the run still open (a framework with no exception hook, or a
    script that never reached the end of training) ends it ERROR from an ``atexit`` hook, so
    the experiment ends and its policy runs; only SIGKILL leaves it ACTIVE.
    """

    def __init__(self, client: Client, name: str, config: dict, hparams: dict | None = None):
        self.client = client
        self._blocks = ExitStack()
        self.ended = False
        self.experiment = self._blocks.enter_context(client.experiment(name, config))
        self.trial = self._blocks.enter_context(client.trial(self.experiment["id"], hparams))
        atexit.register(self._end_at_exit)

    def end(self, exc: BaseException | None = None) -> dict:
        """Leave the blocks: COMPLETED, or ERROR when ``exc`` ended training. Returns the
        trial (with ``state``, ``experiment_state`` and the policy's ``gc_run``). Once only:
        a second call changes nothing."""
        if self.ended:
            return self.trial
        self.ended = True
        atexit.unregister(self._end_at_exit)
        if exc is None:
            self._blocks.close()
        else:
            self._blocks.__exit__(type(exc), exc, exc.__traceback__)
        return self.trial

    def _end_at_exit(self) -> None:
        exc = RuntimeError("the process exited before training ended")
        self.end(exc)
        for note in getattr(exc, "__notes__", ()):  # a failure to end it, told not hidden
            print(note, file=sys.stderr)


class RunCallback:
    """What a framework callback with no exception hook shares (Transformers, Keras): its
    arguments, the ``Run`` it opens when training begins, and ``with callback:``, which ends
    the trial ERROR as soon as the block raises (the exception goes on).

    Mixed in before the framework's callback class; ``__init__`` cooperates with it.
    """

    def __init__(self, experiment: str, config: dict | None = None, client: Client | None = None):
        super().__init__()
        self.experiment_name = experiment
        self.config = config
        self.client = client
        self.experiment: dict | None = None
        self.trial: dict | None = None
        self.checkpoints: list[dict] = []
        self.run: Run | None = None  # the experiment and its trial, while training runs

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is not None:
            self._end(exc)
        return False

    def _end(self, exc: BaseException | None) -> None:
        """End the running trial: COMPLETED, or ERROR when ``exc`` is given."""
        if self.run is not None:
            self.run.end(exc)
