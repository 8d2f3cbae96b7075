"""The deletion kernel: the one rule that lets a checkpoint's files go, asked last.

Every path that deletes checkpoint files asks ``refusals`` immediately before it calls
storage, with what it is about to delete:

* every GC run, whatever started it (a policy saved, an experiment ended or deleted, one
  checkpoint deleted from the API, a page, the bulk action, ``ckpt`` or ``det``, some files
  of one deleted, the sweep): ``execute.delete_claimed``, batch by batch;
* orphan deletion (``storage.reconcile.orphans``), for directories no checkpoint owns.

Who may lose files is decided here, in the database, at that moment:

* a run deletes only the checkpoints it holds (DELETING with ``gc_run`` = the run: the claim
  made them so under the experiment's row lock, after ranking them against the policy, so a
  retained checkpoint is never held) that are neither protected nor registered as a model
  version;
* an orphan deletion deletes only directories whose UUID no checkpoint has, or a DELETED
  checkpoint that nothing pins.

Where a file may be deleted (inside the checkpoint's real directory, the directory itself not
a symlink, no ``..``) is the storage layer's rule, checked by the backend as it deletes
(``ckptweb.lib.paths``, ``SharedFSBackend``): this layer cannot see the file system, and a
check made earlier than the deletion itself would leave a window.

Refusals here mean another guard was bypassed (the claim, ``update_checkpoint``, the
registry all refuse first): the run records the checkpoint ERROR, "needs attention", with
its files untouched, and the sweep leaves it for an administrator.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, OuterRef

from ckptweb.lib.db import chunked
from experiments.choices import CheckpointState
from experiments.models import Checkpoint, ModelVersion


def refusals(uuids: Iterable[str], run_id: int | None = None) -> dict[str, str]:
    """Why the files of each of ``uuids`` may not be deleted now: ``{uuid: reason}``.

    ``run_id``: the GC run about to delete them; None for an orphan deletion. An empty
    answer lets every one go. One query per ``chunked`` part of ``uuids``.
    """
    uuids = [str(u) for u in uuids]
    rows = {}
    registered = Exists(ModelVersion.objects.filter(checkpoint=OuterRef("pk")))
    for part in chunked(uuids):
        found = (
            Checkpoint.objects.filter(uuid__in=part)
            .annotate(registered=registered)
            .values_list("uuid", "state", "gc_run_id", "protected", "registered")
        )
        rows.update({str(row[0]): row[1:] for row in found})
    refused = {}
    for uuid in uuids:
        reason = _refusal(rows.get(uuid), run_id)
        if reason:
            refused[uuid] = reason
    return refused


def _refusal(row: tuple | None, run_id: int | None) -> str | None:
    """The reason one checkpoint's files may not go (``refusals``), or None."""
    if row is None:
        return "no checkpoint has this UUID" if run_id is not None else None
    state, holder, protected, registered = row
    if run_id is not None and (state != CheckpointState.DELETING or holder != run_id):
        return f"the checkpoint is {state}, not held by GC run {run_id}"
    if run_id is None and state != CheckpointState.DELETED:
        return f"a checkpoint with this UUID exists now ({state})"
    if protected:
        return "the checkpoint is protected"
    if registered:
        return "the checkpoint is registered as a model version"
    return None


__all__ = ["refusals"]
