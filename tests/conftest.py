"""Shared fixtures: personas, signed-in clients, storage under tmp_path, the spec's example,
the S3/GCS/Azure test servers, stores on every backend, and the ``ckpt`` executable.

Personas: ``alice`` owns the experiments of a test, ``bob`` is another signed-in user (may
read, must not change alice's experiments), ``staff`` may change anything and manage
storage. ``client_for(user, api=...)`` signs any user in; ``<persona>_api`` (API client)
and ``<persona>_client`` (page client) are the usual ones. Sub-folders' conftests keep
only what is specific to their folder; this file defines fixtures only, their helpers are
plain modules (factories, spec, servers, stores).
"""

import json
import logging
import os
import subprocess

import pytest

from experiments import services
from tests import factories, spec
from tests.client.cli.helpers import CKPT
from tests.factories import make_experiment, password_for, report_with_files
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
from tests.stores import LogRecorder, SecretWatch, Store, make_store, unique_prefix

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


# --- stores: storage locations with their StorageConfig, on every backend (tests/stores.py) -


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory):
    """A shared_fs host path that lives for the whole session (like the buckets do)."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(params=["shared_fs", "s3", "gcs", "azure"])
def store(request, db, shared_root) -> Store:
    """The backend contract fixture: one Store per backend type.

    Its location is the same for the whole session, so that files seeded once (see
    ``make_checkpoint(..., uuid=...)``) serve every test; tests that need an empty
    storage use ``fs_store``/``s3_store``/``gcs_store`` or ``isolated_store``.
    """
    return make_store(request.param, request, shared_root, "contract")


@pytest.fixture
def isolated_store(request, db, tmp_path):
    """``isolated_store(kind)``: a Store of ``kind`` in a location of its own."""
    return lambda kind: make_store(kind, request, tmp_path, unique_prefix())


def isolated_store_of(kind: str):
    """A fixture giving a Store of ``kind`` in a location of its own."""

    @pytest.fixture
    def isolated(isolated_store) -> Store:
        return isolated_store(kind)

    return isolated


#: ``fs_store`` serves the tests that are about HTTP, not about a backend.
fs_store = isolated_store_of("shared_fs")
s3_store = isolated_store_of("s3")
gcs_store = isolated_store_of("gcs")
azure_store = isolated_store_of("azure")

#: (kind, location) of checkpoint directories already written this session.
SEEDED: set[tuple[str, str, str]] = set()


@pytest.fixture
def make_checkpoint(alice):
    """``make_checkpoint(store, files, state=...)``: rows plus files in the store."""
    from experiments.models import Checkpoint, Experiment, Trial

    def make(store: Store, files=None, state="COMPLETED", steps=10, uuid=None):
        """Rows for a checkpoint plus its files; with ``uuid``, files are seeded only once."""
        experiment = Experiment.objects.create(
            owner=alice, name="storage test", searcher_metric="loss", storage=store.config
        )
        trial = Trial.objects.create(experiment=experiment)
        files = files or {}
        checkpoint = Checkpoint.objects.create(
            trial=trial,
            steps_completed=steps,
            state=state,
            resources={path: len(data) for path, data in files.items()},
            size_bytes=sum(len(data) for data in files.values()),
            **({"uuid": uuid} if uuid else {}),
        )
        seed = (store.kind, str(store.root), store.key(checkpoint.uuid, ""))
        if uuid is None or seed not in SEEDED:
            store.put_files(checkpoint.uuid, files)
            SEEDED.add(seed)
        return checkpoint

    return make


@pytest.fixture
def gcs_signing_key(tmp_path, monkeypatch):
    """A generated service-account key file, as GOOGLE_APPLICATION_CREDENTIALS."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "ckptweb-test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "signer@ckptweb-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return key.public_key()


@pytest.fixture
def secret_watch(monkeypatch):
    """Record the headers and body of every response (and every log line) of a test; the
    test fails at teardown if any of them carried a secret.

    Every module of storage and download tests asks for it
    (``pytestmark = pytest.mark.usefixtures("secret_watch")``).
    """
    from django.core.handlers.base import BaseHandler

    watch = SecretWatch()
    original = BaseHandler.get_response

    def get_response(self, request):
        response = original(self, request)
        where = f"{request.method} {request.get_full_path()} -> {response.status_code}"
        headers = "\n".join(f"{k}: {v}" for k, v in response.items()).encode()
        watch.recorded.append((where + " headers", headers))
        if response.streaming:
            response.streaming_content = watch.scan_stream(response.streaming_content, where)
        else:
            watch.recorded.append((where + " body", bytes(response.content)))
        return response

    monkeypatch.setattr(BaseHandler, "get_response", get_response)
    handler = LogRecorder(watch)
    logging.getLogger().addHandler(handler)
    yield watch
    logging.getLogger().removeHandler(handler)
    assert watch.leaks() == [], f"a secret appeared in {watch.leaks()}"


# --- the real ``ckpt`` executable against ``live_server`` ----------------------------------


@pytest.fixture
def ckpt_executable():
    if not CKPT.exists():
        pytest.fail(f"{CKPT} is missing: run `.venv/bin/pip install -e . --no-deps`")
    return CKPT


@pytest.fixture
def token(transactional_db, alice):
    from ckptweb.accounts.services import create_token

    return create_token(alice, "test")[1]


@pytest.fixture
def run_ckpt(ckpt_executable, live_server, token, tmp_path):
    """Run ``ckpt ARGS`` as alice against the live server; returns CompletedProcess."""

    def run(*args, url=None, input=None, token_value=None, timeout=60):
        env = {
            **os.environ,
            "CKPTWEB_URL": url or live_server.url,
            "CKPTWEB_TOKEN": token if token_value is None else token_value,
        }
        return subprocess.run(
            [str(ckpt_executable), *map(str, args)],
            env=env,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )

    return run


@pytest.fixture
def populated(transactional_db, alice, default_storage):
    """alice's experiment: two trials, five checkpoints with real files (two unmeasured)."""
    experiment = make_experiment(alice, default_storage, name="cli-exp")
    first = services.create_trial(experiment)
    second = services.create_trial(experiment)
    rows = [
        (first, 100, 0.9),
        (first, 200, 0.5),
        (first, 300, None),
        (second, 100, 0.7),
        (second, 200, None),
    ]
    checkpoints = [
        report_with_files(
            default_storage,
            trial,
            steps,
            {"state-dict.pth": os.urandom(1000 + steps), "code/model_def.py": b"print(1)\n"},
            metric,
        )
        for trial, steps, metric in rows
    ]
    return experiment, checkpoints
