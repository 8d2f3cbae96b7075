"""Fixtures of the reconciliation tests: one planted storage per backend.

The S3 (moto), GCS (emulator) and Azure (Azurite) servers are the session fixtures of
tests/conftest.py; ``Store`` is tests/stores.py's.
"""

from __future__ import annotations

import pytest

from tests.reconcile.planter import Planter
from tests.stores import Store, make_store, unique_prefix


@pytest.fixture(params=["shared_fs", "s3", "gcs", "azure"])
def store(request, db, tmp_path) -> Store:
    """One Store per backend type (object stores start their server on first use)."""
    return make_store(request.param, request, tmp_path, unique_prefix())


@pytest.fixture
def fs_store(db, request, tmp_path) -> Store:
    """A shared_fs Store."""
    return make_store("shared_fs", request, tmp_path, unique_prefix())


@pytest.fixture
def planter(store, alice) -> Planter:
    return Planter(store, alice)


@pytest.fixture
def fs_planter(fs_store, alice) -> Planter:
    return Planter(fs_store, alice)


@pytest.fixture
def grace(settings, store):
    """Grace period that makes planted directories old: 1 h on shared_fs (they are
    backdated two hours), 0 on object stores (whose times cannot be backdated)."""
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 3600 if store.kind == "shared_fs" else 0
    return settings.CKPTWEB_SCAN_GRACE_SECONDS
