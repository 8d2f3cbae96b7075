"""The lifecycle calls of ``ckptweb.client.Client``: end trials, run them in ``with`` blocks.

``LifecycleCalls`` is a mixin over the client's ``request``, ``paginate``,
``create_experiment``, ``create_trial``, ``get_experiment`` and ``set_experiment_state``::

    with api.experiment("mnist", {"searcher": {"metric": "loss"}}) as experiment:
        for lr in (0.1, 0.01):
            with api.trial(experiment["id"], {"lr": lr}) as trial:
                ...  # train, report validations and checkpoints to trial["id"]
    # The last trial's end ended the experiment on the server, and its policy runs.

A trial block ends its trial COMPLETED when the block ends, ERROR when it raises; the
exception goes on, and if the server could not be told, that failure is added to it as a
note (``BaseException.add_note``), never put in its place. The server ends an experiment when
its last running trial ends (COMPLETED if one completed, else CANCELED if one was canceled,
else ERROR) and starts the GC run that applies its policy: no other call is needed. The
trial's dict then holds the server's answer: ``state``, ``experiment_state`` and ``gc_run``
(the run the experiment's end started, else None).

An experiment block creates the experiment, and holds it open for the trials it runs one
after another: a trial block inside it that ends while no other trial block of the
experiment block runs keeps its end (its dict says ACTIVE) until the next trial block has
created its trial, or the experiment block ends, so the experiment does not end between two
trials. When the experiment block raises, the ends kept are sent, every trial of the
experiment still running (ACTIVE or PAUSED: one made by ``create_trial``, say) ends ERROR,
and an experiment still running after that (one without trials) is set ERROR, so its policy
runs all the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ckptweb.client.errors import ApiError

#: Trial and experiment states in which training may still go on (the server's choices).
RUNNING_STATES = ("ACTIVE", "PAUSED")


class _OpenExperiment:
    """What an experiment block holds: its running trial blocks and the ends it keeps."""

    def __init__(self):
        self.running: set[int] = set()
        self.kept: list[tuple[dict, str]] = []


class LifecycleCalls:
    """Change a trial's state; ``trial`` and ``experiment`` blocks that end what they start."""

    def set_trial_state(self, trial_id: int, state: str) -> dict:
        """End a trial (COMPLETED, CANCELED, ERROR), or pause (PAUSED) and resume (ACTIVE) it.

        Returns the trial with ``experiment_state`` and ``gc_run``: when this was the last
        running trial, the experiment has ended and ``gc_run`` applies its policy.
        """
        return self.request("PATCH", f"trials/{trial_id}", json={"state": state})

    @contextmanager
    def trial(self, experiment_id: int, hparams: dict | None = None) -> Iterator[dict]:
        """Create a trial and yield it; COMPLETED when the block ends, ERROR if it raises."""
        trial = self.create_trial(experiment_id, hparams)
        block = self._open_experiments().get(experiment_id)
        if block is not None:
            block.running.add(trial["id"])
            self._send_kept(block)  # this trial keeps the experiment running now
        try:
            yield trial
        except BaseException as exc:
            try:
                self._end_trial(block, trial, "ERROR")
            except ApiError as failure:
                exc.add_note(f"ckptweb: trial {trial['id']} could not be set ERROR: {failure}")
            raise
        self._end_trial(block, trial, "COMPLETED")

    @contextmanager
    def experiment(self, name: str, config: dict | str | None = None) -> Iterator[dict]:
        """Create an experiment (``create_experiment``) and yield it, held open for the trial
        blocks inside; if the block raises, what still runs of it ends ERROR."""
        experiment = self.create_experiment({} if config is None else config, name)
        block = self._open_experiments()[experiment["id"]] = _OpenExperiment()
        try:
            yield experiment
        except BaseException as exc:
            self._end_experiment_after(exc, experiment["id"], block)
            raise
        finally:
            self._open_experiments().pop(experiment["id"], None)
        self._send_kept(block)

    # --- internals -------------------------------------------------------------------------

    def _open_experiments(self) -> dict[int, _OpenExperiment]:
        """The experiment blocks open on this client, by experiment id."""
        if not hasattr(self, "_experiment_blocks"):
            self._experiment_blocks: dict[int, _OpenExperiment] = {}
        return self._experiment_blocks

    def _end_trial(self, block: _OpenExperiment | None, trial: dict, state: str) -> None:
        """Send ``trial``'s end, or keep it in ``block`` while no other trial of it runs."""
        if block is None:
            trial.update(self.set_trial_state(trial["id"], state))
            return
        block.running.discard(trial["id"])
        if block.running:
            trial.update(self.set_trial_state(trial["id"], state))
        else:
            block.kept.append((trial, state))

    def _send_kept(self, block: _OpenExperiment) -> None:
        """Send the trial ends ``block`` kept, in the order the trials ended."""
        while block.kept:
            trial, state = block.kept.pop(0)
            trial.update(self.set_trial_state(trial["id"], state))

    def _end_experiment_after(
        self, exc: BaseException, experiment_id: int, block: _OpenExperiment
    ) -> None:
        """End what still runs of an experiment whose block raised ``exc``; each failure is a
        note on ``exc``."""
        for trial, state in block.kept:
            self._note_failure(exc, f"trial {trial['id']} could not be set {state}", trial, state)
        block.kept.clear()
        try:
            trials = list(self.paginate(f"experiments/{experiment_id}/trials"))
        except ApiError as failure:
            exc.add_note(f"ckptweb: experiment {experiment_id}'s trials: {failure}")
            trials = []
        for trial in trials:
            if trial["state"] in RUNNING_STATES:
                self._note_failure(exc, f"trial {trial['id']} could not be set ERROR", trial)
        try:
            if self.get_experiment(experiment_id)["state"] in RUNNING_STATES:
                self.set_experiment_state(experiment_id, "ERROR")
        except ApiError as failure:
            exc.add_note(f"ckptweb: experiment {experiment_id} could not be set ERROR: {failure}")

    def _note_failure(self, exc: BaseException, what: str, trial: dict, state="ERROR") -> None:
        """Set ``trial`` to ``state``; a failure becomes a note on ``exc``, not an error."""
        try:
            trial.update(self.set_trial_state(trial["id"], state))
        except ApiError as failure:
            exc.add_note(f"ckptweb: {what}: {failure}")
