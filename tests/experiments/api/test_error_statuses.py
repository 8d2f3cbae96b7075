"""One exception → status table (``ckptweb.api.STATUSES``) for every API answer: the REST
downloads answer ``{"detail", "message"}``, ``/det-compat/`` the same status in Determined's
body ``{"message", "error": {"error"}}``.
"""

from __future__ import annotations

import pytest
from django.test import Client

from ckptweb.detcompat.auth import issue_token
from ckptweb.lib.errors import Conflict
from experiments import downloads, services
from storage.backends.base import (
    DirectDownloadUnsupported,
    FileNotFoundInStorage,
    StorageError,
    TransientStorageError,
)

CASES = [
    (downloads.CheckpointGone("checkpoint c is DELETED; its files are gone."), 410),
    (FileNotFoundInStorage("w.bin not found"), 404),
    (DirectDownloadUnsupported("shared_fs has no direct URLs"), 409),
    (TransientStorageError("storage s is unreachable; try again"), 503),
    (StorageError("storage s answered 500"), 502),
    (Conflict("experiment 1 is being deleted."), 409),
]


@pytest.fixture
def failing(monkeypatch, trial):
    """The checkpoint whose download raises ``error``."""
    checkpoint = services.report_checkpoint(trial, 7, {"w.bin": 1})

    def fail_with(error):
        def raise_it(_checkpoint):
            raise error

        monkeypatch.setattr(downloads, "ensure_downloadable", raise_it)
        return checkpoint

    return fail_with


@pytest.mark.parametrize(("error", "status"), CASES)
def test_the_rest_download_and_det_compat_answer_the_same_status(
    alice, alice_api, failing, error, status
):
    checkpoint = failing(error)
    rest = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/download")
    assert rest.status_code == status
    assert rest.json() == {"detail": str(error), "message": str(error)}
    assert ("Retry-After" in rest) == (status == 503)
    det = Client().get(
        f"/det-compat/checkpoints/{checkpoint.uuid}",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(alice)}",
    )
    assert det.status_code == status
    assert det.json() == {"message": str(error), "error": {"error": str(error)}}
    assert "Retry-After" not in det


def test_an_unsafe_path_is_a_400_naming_path(alice_api, trial):
    """``UnsafePath`` (``ckptweb.lib.paths``) answers a 400 naming ``path``."""
    checkpoint = services.report_checkpoint(trial, 7, {"w.bin": 1})
    response = alice_api.get(f"/api/v1/checkpoints/{checkpoint.uuid}/files/a/../../b")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("path: ")
