"""A checkpoint directory that is a symlink is refused everywhere (issue 25, item 2).

The attack: alice links a new checkpoint's directory to bob's protected checkpoint
(``ln -s <root>/<bob's uuid> <root>/<new uuid>``), reports the new uuid, then deletes a file
of it. The partial deletion followed the link and deleted bob's file while his row still
listed it. Now the link is refused for reading and for partial deletion, and a whole
deletion removes only the link.
"""

import uuid
from pathlib import Path

import pytest

from experiments import services
from experiments.choices import CheckpointState
from experiments.gc import files, runs
from experiments.gc.execute import execute_run
from storage.backends import get_backend
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def linked(alice, bob, default_storage):
    """bob's protected checkpoint, and alice's checkpoint whose directory links to it."""
    bobs_trial = services.create_trial(factories.make_experiment(bob, default_storage), {})
    bobs = factories.report_with_files(default_storage, bobs_trial, 100, {"weights.bin": b"b" * 8})
    services.update_checkpoint(bobs, protected=True)
    alices_trial = services.create_trial(factories.make_experiment(alice, default_storage), {})
    name = uuid.uuid4()
    root = Path(default_storage.host_path)
    (root / str(name)).symlink_to(root / str(bobs.uuid), target_is_directory=True)
    alices = services.report_checkpoint(alices_trial, 100, resources={"weights.bin": 8}, uuid=name)
    return bobs, alices, root


def test_partial_deletion_through_the_link_deletes_nothing_of_bobs(linked):
    bobs, alices, root = linked
    run = files.delete_files(alices, ["weights.bin"])
    execute_run(run.pk)
    assert (root / str(bobs.uuid) / "weights.bin").read_bytes() == b"b" * 8
    alices.refresh_from_db()
    assert alices.state == CheckpointState.ERROR
    assert "symlink" in alices.error
    bobs.refresh_from_db()
    assert bobs.state == CheckpointState.COMPLETED
    assert bobs.resources == {"weights.bin": 8}


def test_reading_through_the_link_is_refused(linked, default_storage):
    _bobs, alices, _root = linked
    with pytest.raises(Exception, match="symlink"):
        get_backend(default_storage).list_files(str(alices.uuid))


def test_deleting_the_linked_checkpoint_removes_only_the_link(linked):
    bobs, alices, root = linked
    run = runs.delete_checkpoint(alices)
    execute_run(run.pk)
    assert not (root / str(alices.uuid)).exists()
    assert (root / str(bobs.uuid) / "weights.bin").read_bytes() == b"b" * 8
    alices.refresh_from_db()
    assert alices.state == CheckpointState.DELETED
