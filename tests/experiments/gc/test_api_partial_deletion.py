"""Partial deletion end to end: POST checkpoints/{uuid}/rm, the FILES GC run, each backend.

The files live on the real backends (shared_fs, moto S3, the GCS emulator); each test
checks storage with the provider's own client (``Store.exists``), not through our code.
"""

from __future__ import annotations

import pytest

from experiments.choices import CheckpointState, GCReason
from experiments.models import Checkpoint, GCRun
from storage.backends import get_backend
from storage.backends.shared_fs import SharedFSBackend

pytestmark = pytest.mark.usefixtures("secret_watch")

FILES = {
    "model.pth": b"m" * 100,
    "code/train.py": b"print('train')\n",
    "code/lib/util.py": b"x = 1\n",
    "tmp/a.tmp": b"t" * 7,
    "b.tmp": b"tt",
}


def rm(client, checkpoint, globs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            f"/api/v1/checkpoints/{checkpoint.uuid}/rm", {"globs": globs}, format="json"
        )


@pytest.mark.parametrize("kind", ["shared_fs", "s3", "gcs"])
def test_rm_deletes_the_matching_files_on_each_backend(
    kind, isolated_store, make_checkpoint, alice, client_for, django_capture_on_commit_callbacks
):
    store = isolated_store(kind)
    checkpoint = make_checkpoint(store, FILES)
    response = rm(
        client_for(alice, api=True),
        checkpoint,
        ["code/**", "**/*.tmp"],
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 202, response.content
    run = GCRun.objects.get(pk=response.json()["gc_run"]["id"])
    assert (run.reason, run.state, run.globs) == (
        GCReason.FILES,
        "SUCCEEDED",
        ["code/**", "**/*.tmp"],
    )
    assert run.reclaimed_bytes == sum(len(FILES[p]) for p in FILES if p != "model.pth")
    checkpoint.refresh_from_db()
    assert checkpoint.state == CheckpointState.PARTIALLY_DELETED
    assert checkpoint.resources == {"model.pth": 100}
    assert checkpoint.size_bytes == 100
    assert store.exists(checkpoint.uuid, "model.pth")
    for path in FILES:
        if path != "model.pth":
            assert not store.exists(checkpoint.uuid, path), path
    if kind == "shared_fs":  # emptied directories go too, the checkpoint dir stays
        assert not (store.root / str(checkpoint.uuid) / "code").exists()
        assert (store.root / str(checkpoint.uuid)).is_dir()

    # Deleting the rest leaves nothing: DELETED.
    response = rm(
        client_for(alice, api=True), checkpoint, ["*"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 202
    checkpoint.refresh_from_db()
    assert (checkpoint.state, checkpoint.resources, checkpoint.size_bytes) == ("DELETED", {}, 0)
    assert not store.exists(checkpoint.uuid, "model.pth")
    api = client_for(alice, api=True).get(f"/api/v1/checkpoints/{checkpoint.uuid}").json()
    assert (api["state"], api["resources"], api["size_bytes"]) == ("DELETED", {}, 0)


def test_resources_change_only_for_files_storage_confirms(
    fs_store, make_checkpoint, alice, client_for, monkeypatch, django_capture_on_commit_callbacks
):
    checkpoint = make_checkpoint(fs_store, FILES)
    original = SharedFSBackend.remove_file

    def refuse_util(full):
        if full.endswith("util.py"):
            raise PermissionError(13, "Permission denied")
        original(full)

    monkeypatch.setattr(SharedFSBackend, "remove_file", staticmethod(refuse_util))
    response = rm(
        client_for(alice, api=True), checkpoint, ["code/**"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 202
    run = GCRun.objects.get(pk=response.json()["gc_run"]["id"])
    assert run.state == "FAILED" and run.failed == 1
    assert "code/lib/util.py" in run.errors[0]["error"]
    checkpoint.refresh_from_db()
    assert checkpoint.state == CheckpointState.PARTIALLY_DELETED  # train.py did go
    assert "code/lib/util.py" in checkpoint.error
    assert "code/lib/util.py" in checkpoint.resources  # still on storage
    assert "code/train.py" not in checkpoint.resources  # confirmed gone
    assert checkpoint.size_bytes == sum(checkpoint.resources.values())
    assert fs_store.exists(checkpoint.uuid, "code/lib/util.py")
    assert not fs_store.exists(checkpoint.uuid, "code/train.py")

    # Nothing went at all: ERROR, files and resources untouched.
    untouched = make_checkpoint(fs_store, {"code/lib/util.py": b"u", "keep": b"k"})
    response = rm(
        client_for(alice, api=True), untouched, ["code/**"], django_capture_on_commit_callbacks
    )
    untouched.refresh_from_db()
    assert untouched.state == CheckpointState.ERROR
    assert untouched.resources == {"code/lib/util.py": 1, "keep": 1}


@pytest.mark.parametrize(
    ("globs", "message"),
    [
        (["../other/*"], "'..'"),
        (["/etc/*"], "absolute"),
        ([], "empty"),
        ("*.tmp", "list"),
        (["nothing-matches-*"], "match no file"),
    ],
)
def test_bad_globs_are_400_naming_globs(
    fs_store, make_checkpoint, alice, client_for, globs, message, django_capture_on_commit_callbacks
):
    checkpoint = make_checkpoint(fs_store, FILES)
    response = rm(
        client_for(alice, api=True), checkpoint, globs, django_capture_on_commit_callbacks
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert "globs" in body
    assert message.lower() in str(body).lower()
    assert not GCRun.objects.filter(reason=GCReason.FILES).exists()
    assert fs_store.exists(checkpoint.uuid, "b.tmp")


def test_protected_is_409_and_non_owner_403(
    fs_store, make_checkpoint, alice, bob, staff, client_for, django_capture_on_commit_callbacks
):
    checkpoint = make_checkpoint(fs_store, FILES)
    response = rm(
        client_for(bob, api=True), checkpoint, ["*.tmp"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 403
    assert fs_store.exists(checkpoint.uuid, "b.tmp")

    Checkpoint.objects.filter(pk=checkpoint.pk).update(protected=True)
    response = rm(
        client_for(alice, api=True), checkpoint, ["*.tmp"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 409
    assert "protected" in response.json()["message"]
    assert fs_store.exists(checkpoint.uuid, "b.tmp")

    Checkpoint.objects.filter(pk=checkpoint.pk).update(protected=False)
    response = rm(
        client_for(staff, api=True), checkpoint, ["*.tmp"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 202
    assert not fs_store.exists(checkpoint.uuid, "b.tmp")


def test_unknown_or_malformed_uuid_is_a_json_404(alice, client_for, db):
    for name in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"]:
        response = client_for(alice, api=True).post(
            f"/api/v1/checkpoints/{name}/rm", {"globs": ["*"]}, format="json"
        )
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")


def test_deleted_checkpoint_is_409(fs_store, make_checkpoint, alice, client_for, db):
    checkpoint = make_checkpoint(fs_store, FILES, state="DELETED")
    response = client_for(alice, api=True).post(
        f"/api/v1/checkpoints/{checkpoint.uuid}/rm", {"globs": ["*"]}, format="json"
    )
    assert response.status_code == 409


@pytest.mark.parametrize("kind", ["shared_fs", "s3", "gcs"])
def test_backend_delete_files_reports_absent_files_as_deleted(
    kind, isolated_store, make_checkpoint
):
    store = isolated_store(kind)
    checkpoint = make_checkpoint(store, {"keep.bin": b"k", "go.bin": b"g"})
    backend = get_backend(store.config)
    result = backend.delete_files(str(checkpoint.uuid), ["go.bin", "never-there.bin"])
    assert result.ok, result.errors
    assert store.exists(checkpoint.uuid, "keep.bin")
    assert not store.exists(checkpoint.uuid, "go.bin")
    refused = backend.delete_files(str(checkpoint.uuid), ["../escape"])
    assert not refused.ok
    assert store.exists(checkpoint.uuid, "keep.bin")


def test_the_sweep_resumes_a_dead_files_run_with_its_globs(
    fs_store, make_checkpoint, django_capture_on_commit_callbacks
):
    """A FILES run whose worker died must not be adopted by a SWEEP run (which would
    delete the whole checkpoint): the sweep restarts it with the same globs."""
    from datetime import timedelta

    from django.utils import timezone

    from experiments.gc import execute, sweep
    from experiments.gc.files import delete_files

    checkpoint = make_checkpoint(fs_store, FILES)
    with django_capture_on_commit_callbacks(execute=False):
        dead = delete_files(checkpoint, ["code/**"])
    GCRun.objects.filter(pk=dead.pk).update(state="RUNNING")
    execute.claim_checkpoints(dead)
    fs_store.root.joinpath(str(checkpoint.uuid), "code", "train.py").unlink()  # went before
    GCRun.objects.filter(pk=dead.pk).update(heartbeat=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        started = sweep.sweep()
    dead.refresh_from_db()
    assert dead.state == "FAILED"
    (resumed,) = GCRun.objects.filter(pk__in=started)
    assert (resumed.reason, resumed.state, resumed.globs) == ("FILES", "SUCCEEDED", ["code/**"])
    checkpoint.refresh_from_db()
    assert checkpoint.state == CheckpointState.PARTIALLY_DELETED
    assert sorted(checkpoint.resources) == ["b.tmp", "model.pth", "tmp/a.tmp"]
    for path in ("b.tmp", "model.pth", "tmp/a.tmp"):
        assert fs_store.exists(checkpoint.uuid, path), path
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep.sweep() == []  # nothing left to do
