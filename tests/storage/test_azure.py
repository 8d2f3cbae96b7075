"""Azure Blob Storage on Azurite: configuration rules, credentials, batches, errors, and an
experiment's whole life (report, page, downloads with Range, GC with a leased blob
recorded as ERROR then retried, deletion, scan)."""

from __future__ import annotations

import io
import tarfile
import uuid as uuid_lib
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from experiments.choices import CheckpointState
from experiments.models import Checkpoint, Experiment
from storage import services
from storage.backends import get_backend
from storage.backends.azure import AzureBackend, account_name_of
from storage.backends.base import StorageError, TransientStorageError
from storage.config import ConfigError, parse_storage_section, redact
from storage.models import StorageConfig
from storage.reconcile.actions import start_scan
from storage.reconcile.scan import execute_scan
from tests.servers import AZURE_ACCOUNT, AZURE_KEY, BUCKET
from tests.stores import consume, unique_prefix

pytestmark = pytest.mark.usefixtures("secret_watch")

CONN = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={AZURE_KEY};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


# --- configuration rules -------------------------------------------------------------------


def azure(**fields) -> StorageConfig:
    return StorageConfig(name="az", type="azure", **fields)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"connection_string": CONN}, "container", "required"),
        ({"container": "c"}, "connection_string", "exactly one"),
        (
            {"container": "c", "connection_string": CONN, "account_url": "https://a.blob.x"},
            "account_url",
            "only one",
        ),
        ({"container": "c", "connection_string": CONN, "credential": "k"}, "credential", "needs"),
        ({"container": "c", "connection_string": "nonsense"}, "connection_string", "not an"),
        ({"container": "c", "account_url": "a.blob.x"}, "account_url", "http"),
        ({"container": "c", "connection_string": CONN, "bucket": "b"}, "bucket", "not apply"),
    ],
)
def test_model_rules_name_the_field(fields, field, words):
    with pytest.raises(ValidationError) as info:
        azure(**fields).clean()
    messages = info.value.message_dict
    assert field in messages, messages
    assert words in messages[field][0]
    assert AZURE_KEY not in str(messages)


def test_container_and_connection_string_are_valid():
    azure(container="c", connection_string=CONN, prefix="runs/a").clean()
    azure(container="c", account_url="https://acct.blob.core.windows.net", credential="k").clean()
    azure(container="c", account_url="https://acct.blob.core.windows.net").clean()


def test_s3_fields_still_refuse_azure_fields():
    with pytest.raises(ValidationError) as info:
        StorageConfig(name="s", type="s3", bucket="b", container="c").clean()
    assert "container" in info.value.message_dict


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"type": "azure", "connection_string": CONN}, "checkpoint_storage.container"),
        ({"type": "azure", "container": "c"}, "checkpoint_storage.connection_string"),
        (
            {"type": "azure", "container": "c", "connection_string": CONN, "account_url": "x"},
            "checkpoint_storage.account_url",
        ),
        (
            {"type": "azure", "container": "c", "account_url": "http://h/a", "prefix": "../x"},
            "checkpoint_storage.prefix",
        ),
        ({"type": "gcs", "bucket": "b", "container": "c"}, "checkpoint_storage.container"),
    ],
)
def test_experiment_config_errors_name_the_field(section, field):
    with pytest.raises(ConfigError) as info:
        parse_storage_section(section)
    assert info.value.field == field
    assert field in info.value.message
    assert AZURE_KEY not in info.value.message


def test_experiment_config_keeps_azure_fields_and_redacts_secrets():
    section = {"type": "azure", "container": "c", "prefix": "p", "connection_string": CONN}
    spec = parse_storage_section(section)
    assert spec.fields == {"container": "c", "prefix": "p", "connection_string": CONN}
    redacted = redact({"checkpoint_storage": {**section, "credential": "sv=1&sig=abc"}})
    assert AZURE_KEY not in str(redacted)
    assert "sig=abc" not in str(redacted)


def test_scrub_removes_the_account_key_and_location_shows_none():
    config = azure(container="c", connection_string=CONN, prefix="runs")
    assert config.location == "azure://c/runs via http://127.0.0.1:9/devstoreaccount1"
    text = f"failed for {CONN} and key {AZURE_KEY}"
    assert AZURE_KEY not in config.scrub(text)
    sas = azure(container="c", account_url="https://acct.blob.core.windows.net/?sv=1&sig=zz")
    assert "sig=zz" not in sas.location and "sig=zz" not in sas.scrub("url ?sv=1&sig=zz")


def test_account_names_of_endpoints():
    assert account_name_of("https://acct.blob.core.windows.net") == "acct"
    assert account_name_of("http://127.0.0.1:10000/devstoreaccount1") == "devstoreaccount1"
    assert account_name_of("http://localhost:10000/devstoreaccount1/") == "devstoreaccount1"


# --- credentials ---------------------------------------------------------------------------


@pytest.fixture
def azurite(azurite_server, db):
    return azurite_server


def account_url_config(azurite, credential: str) -> StorageConfig:
    return StorageConfig.objects.create(
        name=f"az-{uuid_lib.uuid4().hex[:8]}",
        type="azure",
        container=BUCKET,
        prefix=unique_prefix(),
        account_url=azurite.endpoint,
        credential=credential,
    )


def test_account_url_with_an_account_key(azurite):
    config = account_url_config(azurite, AZURE_KEY)
    ok, message = services.test_connection(config)
    assert ok, message
    assert AZURE_KEY not in message


def test_account_url_with_a_sas_credential(azurite, azure_store):
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        AZURE_ACCOUNT,
        AZURE_KEY,
        resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    checkpoint_uuid = str(uuid_lib.uuid4())
    azure_store.put(checkpoint_uuid, "a.bin", b"sas-read")
    config = account_url_config(azurite, sas)
    config.prefix = azure_store.config.prefix
    backend = get_backend(config)
    assert [f.path for f in backend.list_files(checkpoint_uuid)] == ["a.bin"]
    with backend.open(checkpoint_uuid, "a.bin", 4) as reader:
        assert reader.read() == b"read"


def test_a_wrong_key_is_refused_without_quoting_it(azurite):
    wrong = "d3Jvbmcta2V5LW5ldmVyLXNob3duLXRvLWFueW9uZS0xMjM0NTY3ODkw"
    config = account_url_config(azurite, wrong)
    ok, message = services.test_connection(config)
    assert not ok
    assert "403" in message and wrong not in message


def test_unreachable_is_transient_and_secret_free(db):
    config = StorageConfig.objects.create(
        name="az-down", type="azure", container="c", connection_string=CONN
    )
    with pytest.raises(TransientStorageError) as info:
        get_backend(config).check_connection()
    assert AZURE_KEY not in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_container_is_a_storage_error(azurite):
    config = account_url_config(azurite, AZURE_KEY)
    config.container = "no-such-container"
    with pytest.raises(StorageError) as info:
        get_backend(config).check_connection()
    assert "ContainerNotFound" in str(info.value) or "not found" in str(info.value)


def test_it_deletes_in_batches_of_256(azure_store, monkeypatch):
    checkpoint_uuid = str(uuid_lib.uuid4())
    for index in range(300):
        azure_store.put(checkpoint_uuid, f"shard-{index:03}.bin", b"x")
    sizes = []
    original = AzureBackend.delete_objects

    def counting(self, names):
        sizes.append(len(names))
        return original(self, names)

    monkeypatch.setattr(AzureBackend, "delete_objects", counting)
    result = get_backend(azure_store.config).delete_checkpoints([checkpoint_uuid])
    assert result.ok, result.errors
    assert (result.deleted_files, result.requests, sizes) == (300, 2, [256, 44])
    assert get_backend(azure_store.config).list_files(checkpoint_uuid) == []


# --- an experiment's whole life ------------------------------------------------------------

FILES = {
    "metadata.json": b'{"steps_completed": 1}',
    "weights.bin": bytes(range(256)) * 4096,
    "code/train.py": b"print('azure')\n",
}


def test_an_experiment_on_azurite_from_report_to_scan(
    azurite, azure_store, staff_api, client, staff, django_capture_on_commit_callbacks, settings
):
    config_text = {
        "name": "on-azure",
        "searcher": {"metric": "loss"},
        "checkpoint_storage": {
            "type": "azure",
            "container": BUCKET,
            "prefix": azure_store.config.prefix,
            "connection_string": azurite.connection_string,
            "save_experiment_best": 0,
            "save_trial_best": 0,
            "save_trial_latest": 1,
        },
    }
    response = staff_api.post("/api/v1/experiments", {"config": config_text}, format="json")
    assert response.status_code == 201, response.json()
    assert AZURE_KEY not in response.content.decode()
    experiment = Experiment.objects.get(pk=response.json()["id"])
    assert experiment.storage.type == "azure"
    trial = staff_api.post(
        f"/api/v1/experiments/{experiment.pk}/trials", {"hparams": {}}, format="json"
    ).json()
    uuids = []
    for steps in (1, 2, 3):
        checkpoint_uuid = str(uuid_lib.uuid4())
        azure_store.put_files(checkpoint_uuid, FILES)
        response = staff_api.post(
            f"/api/v1/trials/{trial['id']}/checkpoints",
            {
                "uuid": checkpoint_uuid,
                "steps_completed": steps,
                "resources": {path: len(data) for path, data in FILES.items()},
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        uuids.append(checkpoint_uuid)
    first = Checkpoint.objects.get(uuid=uuids[0])

    # The page lists the files from storage.
    client.force_login(staff)
    page = client.get(reverse("experiments:checkpoint", kwargs={"uuid": first.uuid}))
    assert page.status_code == 200
    assert b"weights.bin" in page.content and AZURE_KEY.encode() not in page.content

    # Downloads: tar (with a Range), zip, one file with a Range.
    whole = consume(staff_api.get(f"/api/v1/checkpoints/{first.uuid}/download"))
    with tarfile.open(fileobj=io.BytesIO(whole)) as archive:
        assert {m.name: archive.extractfile(m).read() for m in archive if m.isfile()} == FILES
    part = staff_api.get(
        f"/api/v1/checkpoints/{first.uuid}/download", HTTP_RANGE="bytes=1000-200000"
    )
    assert part.status_code == 206 and consume(part) == whole[1000:200001]
    zipped = consume(staff_api.get(f"/api/v1/checkpoints/{first.uuid}/download?format=zip"))
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert archive.read("weights.bin") == FILES["weights.bin"]
    ranged = staff_api.get(
        f"/api/v1/checkpoints/{first.uuid}/files/weights.bin", HTTP_RANGE="bytes=10-99"
    )
    assert ranged.status_code == 206 and consume(ranged) == FILES["weights.bin"][10:100]

    # GC keeps the latest; a lease on one blob of the first checkpoint makes it ERROR.
    lease = azure_store.admin.get_blob_client(azure_store.key(uuids[0], "weights.bin"))
    held = lease.acquire_lease(lease_duration=-1)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.put(
            f"/api/v1/experiments/{experiment.pk}/gc-policy",
            {"save_experiment_best": 0, "save_trial_best": 0, "save_trial_latest": 1},
            format="json",
        )
    assert response.status_code == 202, response.json()
    states = dict(Checkpoint.objects.filter(uuid__in=uuids).values_list("uuid", "state"))
    assert [states[uuid_lib.UUID(u)] for u in uuids] == [
        CheckpointState.ERROR,
        CheckpointState.DELETED,
        CheckpointState.COMPLETED,
    ]
    first.refresh_from_db()
    assert "lease" in first.error.lower() and AZURE_KEY not in first.error
    assert azure_store.exists(uuids[0], "weights.bin")
    assert not azure_store.exists(uuids[1], "weights.bin")

    # The lease released, the sweep retries the ERROR checkpoint and deletes it.
    held.release()
    from experiments.gc import sweep

    with django_capture_on_commit_callbacks(execute=True):
        sweep.sweep()
    first.refresh_from_db()
    assert first.state == CheckpointState.DELETED
    assert not azure_store.exists(uuids[0], "metadata.json")

    # A scan: the live checkpoint is fine, a planted orphan is found, then deleted.
    orphan = str(uuid_lib.uuid4())
    azure_store.put_files(orphan, {"metadata.json": b"{}", "w.bin": b"w" * 10})
    settings.CKPTWEB_SCAN_GRACE_SECONDS = 0  # blob times cannot be backdated
    scan, _created = start_scan(experiment.storage)
    scan = execute_scan(scan.pk) or scan
    scan.refresh_from_db()
    assert scan.state == "SUCCEEDED", scan.error
    assert [str(item.uuid) for item in scan.items.filter(kind="ORPHANED")] == [orphan]
    assert scan.missing == 0 and scan.drifted == 0

    # Deleting the experiment deletes the rest of its files.
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.delete(f"/api/v1/experiments/{experiment.pk}")
    assert response.status_code in (202, 204), response.content
    assert not azure_store.exists(uuids[2], "weights.bin")


# --- admin ---------------------------------------------------------------------------------


def test_admin_never_renders_azure_secrets_and_keeps_them(client, staff, default_storage):
    config = StorageConfig.objects.create(
        name="az-admin", type="azure", container="c", connection_string=CONN
    )
    client.force_login(staff)
    url = reverse("admin:storage_storageconfig_change", args=[config.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert AZURE_KEY.encode() not in page.content and b"AccountKey" not in page.content
    assert b"Currently: set" in page.content
    data = {
        "name": config.name,
        "type": "azure",
        "container": "c2",
        "prefix": "",
        "connection_string": "",
        "account_url": "",
        "credential": "",
        "save_experiment_best": 0,
        "save_trial_best": 1,
        "save_trial_latest": 1,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    config.refresh_from_db()
    assert (config.container, config.connection_string) == ("c2", CONN)
    # Switching to an account URL: clear the connection string, set URL and credential.
    data.update(clear_connection_string="on", account_url="https://a.blob.x", credential="k1")
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    config.refresh_from_db()
    assert (config.connection_string, config.account_url, config.credential) == (
        "",
        "https://a.blob.x",
        "k1",
    )
    # Both at once is refused, naming the field, without echoing the string.
    data.update(clear_connection_string="", connection_string=CONN)
    response = client.post(url, data)
    assert response.status_code == 200
    assert b"give only one of connection_string or account_url" in response.content
    assert AZURE_KEY.encode() not in response.content
