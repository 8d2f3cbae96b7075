"""``ckpt checkpoint rm UUID --glob G…`` against the live server."""

from pathlib import Path

from experiments.models import Checkpoint
from tests.client.cli.helpers import assert_one_line_error


def test_checkpoint_rm(run_ckpt, populated, default_storage):
    _, checkpoints = populated
    target = checkpoints[0]
    root = Path(default_storage.host_path) / str(target.uuid)
    result = run_ckpt("checkpoint", "rm", target.uuid, "--glob", "code/**", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 file(s)" in result.stdout and "PARTIALLY_DELETED" in result.stdout
    target.refresh_from_db()
    assert target.state == "PARTIALLY_DELETED"
    assert list(target.resources) == ["state-dict.pth"]
    assert not (root / "code").exists() and (root / "state-dict.pth").exists()

    declined = run_ckpt("checkpoint", "rm", target.uuid, "--glob", "*")  # EOF on stdin = no
    assert_one_line_error(declined, "aborted")
    assert (root / "state-dict.pth").exists()

    assert_one_line_error(
        run_ckpt("checkpoint", "rm", target.uuid, "--glob", "../x", "--yes"), "'..'"
    )
    Checkpoint.objects.filter(pk=checkpoints[1].pk).update(protected=True)
    assert_one_line_error(
        run_ckpt("checkpoint", "rm", checkpoints[1].uuid, "--glob", "*", "--yes"), "protected"
    )
    usage = run_ckpt("checkpoint", "rm", target.uuid)  # --glob is required
    assert usage.returncode == 2
