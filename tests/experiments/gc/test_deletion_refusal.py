"""``experiments.gc.runs.deletion_refusal``: one rule for "may these files be deleted", which
deleting a whole checkpoint (``runs.delete_checkpoint``) and deleting some of its files
(``files.delete_files``) both apply; and one ``choices.DELETABLE_STATES``, the states a GC
run may claim.
"""

from __future__ import annotations

import pytest

from ckptweb.lib.errors import Conflict
from experiments import registry, services
from experiments.choices import DELETABLE_STATES, CheckpointState
from experiments.gc import files, runs
from experiments.models import Checkpoint
from tests.factories import add_checkpoints


def refusals(checkpoint) -> tuple[str | None, str | None]:
    """The messages refusing a whole deletion and a partial one (None where started)."""
    found = []
    for delete in (runs.delete_checkpoint, lambda c: files.delete_files(c, ["*.pth"])):
        try:
            delete(checkpoint)
        except Conflict as exc:
            found.append(exc.message)
        else:
            found.append(None)
    return found[0], found[1]


def checkpoint_in(trial, state, protected=False) -> Checkpoint:
    checkpoint = add_checkpoints(trial, [(10, None)])[0]
    Checkpoint.objects.filter(pk=checkpoint.pk).update(state=state, protected=protected)
    checkpoint.refresh_from_db()
    return checkpoint


@pytest.mark.parametrize("protected", [False, True])
@pytest.mark.parametrize("state", list(CheckpointState))
def test_whole_and_partial_deletions_refuse_the_same_checkpoints(trial, state, protected):
    checkpoint = checkpoint_in(trial, state, protected)
    whole, part = refusals(checkpoint)
    uuid = checkpoint.uuid
    if state not in DELETABLE_STATES:
        assert whole == f"checkpoint {uuid} is already {state}."
        assert part == f"checkpoint {uuid} is {state}; its files cannot be deleted."
    elif protected:
        assert whole == part == f"checkpoint {uuid} is protected; unprotect it first."
    else:
        assert whole is part is None


def test_a_gone_protected_checkpoint_is_refused_for_its_state_not_its_protection(trial):
    """Unprotecting a DELETED checkpoint would not let its files be deleted, so the refusal
    does not ask for it (deleting files said "unprotect it first" here, before the rule
    was one)."""
    checkpoint = checkpoint_in(trial, CheckpointState.DELETED, protected=True)
    _, part = refusals(checkpoint)
    assert "unprotect" not in part
    services.set_protected([checkpoint], False)
    checkpoint.refresh_from_db()
    assert refusals(checkpoint)[1] == part


def test_a_registered_checkpoint_is_refused_alike(alice, trial):
    checkpoint = checkpoint_in(trial, CheckpointState.COMPLETED)
    registry.register_version(registry.create_model(alice, "resnet-prod"), checkpoint, alice)
    whole, part = refusals(checkpoint)
    assert whole == part
    assert "resnet-prod v1" in whole


def test_deletable_states_are_the_candidates_and_error():
    assert set(DELETABLE_STATES) == {
        CheckpointState.COMPLETED,
        CheckpointState.PARTIALLY_DELETED,
        CheckpointState.ERROR,
    }
