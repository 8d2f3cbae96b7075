"""Partial deletion matches globs against what storage holds (issue 25, item 4, ``**``).

The attack: a checkpoint's directory holds files its ``resources`` never listed (the trainer
wrote more than it reported). ``rm {"globs": ["**"]}`` marked it DELETED while those files
stayed on storage forever. Now the globs are matched against the storage listing as well as
``resources``, and afterwards ``resources`` is what storage lists.
"""

from __future__ import annotations

import pytest

from experiments.choices import CheckpointState
from experiments.gc import files
from experiments.gc.execute import execute_run

pytestmark = pytest.mark.django_db

LISTED = {"model.bin": b"m" * 10, "keep.txt": b"k" * 3}
UNLISTED = {"extra.bin": b"e" * 5, "notes.txt": b"n" * 2, "sub/deep.bin": b"d" * 4}


@pytest.fixture(params=["shared_fs", "s3"])
def planted(request, isolated_store, make_checkpoint):
    """A checkpoint reporting LISTED whose directory also holds UNLISTED."""
    store = isolated_store(request.param)
    checkpoint = make_checkpoint(store, LISTED)
    store.put_files(checkpoint.uuid, UNLISTED)
    return store, checkpoint


def rm(checkpoint, globs) -> None:
    execute_run(files.delete_files(checkpoint, globs).pk)
    checkpoint.refresh_from_db()


def test_rm_everything_leaves_nothing_on_storage(planted):
    store, checkpoint = planted
    rm(checkpoint, ["**"])
    assert {path for uuid, path in store.listing() if uuid == str(checkpoint.uuid)} == set()
    assert (checkpoint.state, checkpoint.resources, checkpoint.size_bytes) == (
        CheckpointState.DELETED,
        {},
        0,
    )


def test_rm_a_glob_deletes_unlisted_matches_and_resources_is_what_storage_lists(planted):
    store, checkpoint = planted
    rm(checkpoint, ["*.bin"])
    left = {path for uuid, path in store.listing() if uuid == str(checkpoint.uuid)}
    assert left == {"keep.txt", "notes.txt", "sub/deep.bin"}  # "*" does not cross "/"
    assert checkpoint.state == CheckpointState.PARTIALLY_DELETED
    assert checkpoint.resources == {"keep.txt": 3, "notes.txt": 2, "sub/deep.bin": 4}
    assert checkpoint.size_bytes == 9
