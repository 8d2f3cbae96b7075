"""Fixtures of the reconciliation tests: one planted storage per backend.

``isolated_store`` and ``fs_store`` (a shared_fs Store) are tests/conftest.py's, as are the
S3 (moto), GCS (emulator) and Azure (Azurite) servers; ``Store`` is tests/stores.py's.
"""

from __future__ import annotations

import pytest

from tests.reconcile.planter import Planter
from tests.stores import Store


@pytest.fixture(params=["shared_fs", "s3", "gcs", "azure"])
def store(request, isolated_store) -> Store:
    """One Store per backend type, each in a location of its own (unlike the backend
    contract's ``store`` of tests/conftest.py, whose location lasts the session)."""
    return isolated_store(request.param)


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
