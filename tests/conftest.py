"""Shared fixtures: personas, signed-in clients, storage under tmp_path, the spec's example.

Personas: ``alice`` owns the experiments of a test, ``bob`` is another signed-in user (may
read, must not change alice's experiments), ``staff`` may change anything and manage
storage. ``client_for(user, api=...)`` signs any user in; ``<persona>_api`` (API client)
and ``<persona>_client`` (page client) are the usual ones. Sub-folders' conftests keep
only what is specific to their folder.
"""

import os

import pytest

from tests import factories, spec
from tests.factories import password_for
from tests.servers import (
    BUCKET,
    GCS_SCRIPT,
    MOTO_SCRIPT,
    azure_admin_client,
    gcs_admin_client,
    missing_service,
    s3_admin_client,
    start_azurite,
    start_server,
)

# --- personas -----------------------------------------------------------------------------


@pytest.fixture
def alice(django_user_model):
    """The owner of the experiments in a test."""
    return django_user_model.objects.create_user("alice", password=password_for("alice"))


@pytest.fixture
def bob(django_user_model):
    """Another signed-in user: may read, must not change alice's experiments."""
    return django_user_model.objects.create_user("bob", password=password_for("bob"))


@pytest.fixture
def staff(django_user_model):
    """A staff member: may change anything and manage storage."""
    return django_user_model.objects.create_user(
        "staff", password=password_for("staff"), is_staff=True, is_superuser=True
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 costs ~0.5 s a user on this machine; tests need no slow hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- signed-in clients --------------------------------------------------------------------


@pytest.fixture
def client_for():
    """``client_for(user, api=False)``: a page (or, with ``api=True``, API) client as ``user``."""
    return factories.client_for


@pytest.fixture
def api():
    """An anonymous API client."""
    return factories.client_for(api=True)


@pytest.fixture
def alice_api(alice):
    return factories.client_for(alice, api=True)


@pytest.fixture
def bob_api(bob):
    return factories.client_for(bob, api=True)


@pytest.fixture
def staff_api(staff):
    return factories.client_for(staff, api=True)


@pytest.fixture
def alice_client(alice):
    return factories.client_for(alice)


@pytest.fixture
def bob_client(bob):
    return factories.client_for(bob)


@pytest.fixture
def staff_client(staff):
    return factories.client_for(staff)


# --- storage and data ---------------------------------------------------------------------


@pytest.fixture
def default_storage(db, tmp_path):
    """The default StorageConfig: shared_fs under this test's tmp_path."""
    from storage.models import StorageConfig

    root = tmp_path / "checkpoints"
    root.mkdir()
    return StorageConfig.objects.create(
        name="default", type="shared_fs", host_path=str(root), is_default=True
    )


@pytest.fixture
def spec_example(alice, default_storage):
    """The spec's example experiment (``manage.py load_demo``'s), owned by alice, with real
    files on the default shared_fs storage."""
    return spec.spec_example(alice)[0]


@pytest.fixture
def spec_ids(spec_example):
    """The example's checkpoint ids in the spec's numbering: {1..10: database id}."""
    return spec.spec_ids(spec_example)


@pytest.fixture
def experiment(alice, default_storage):
    """alice's experiment on the default storage, metric ``loss`` (smaller is better)."""
    return factories.make_experiment(alice, default_storage)


@pytest.fixture
def trial(experiment):
    """A trial of ``experiment`` (hparams ``lr=0.1``)."""
    from experiments import services

    return services.create_trial(experiment, {"lr": 0.1})


# --- S3, GCS and Azure test servers (tests/servers.py), one per session for every package ---


@pytest.fixture(scope="session")
def moto_server():
    """moto's ThreadedMotoServer (S3 over HTTP), with the test bucket created."""
    server = start_server("moto S3 server", MOTO_SCRIPT)
    if isinstance(server, str):
        missing_service(server)
    s3_admin_client(server.endpoint).create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator (GCS JSON API over HTTP), with STORAGE_EMULATOR_HOST set."""
    server = start_server("gcp-storage-emulator", GCS_SCRIPT)
    if isinstance(server, str):
        missing_service(server)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.endpoint
    gcs_admin_client().create_bucket(BUCKET)
    yield server
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
    server.stop()


@pytest.fixture(scope="session")
def azurite_server():
    """Azurite's blob service over HTTP, with the test container created."""
    server = start_azurite()
    if isinstance(server, str):
        missing_service(server)
    azure_admin_client(server.connection_string).create_container(BUCKET)
    yield server
    server.stop()
