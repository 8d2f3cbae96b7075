"""OpenAPI: the schema generates without warnings, Swagger UI needs no CDN, and the live API
conforms to it under schemathesis (no 5xx, documented statuses, content types and bodies)."""

import io

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from experiments import services
from tests.factories import add_checkpoints, make_experiment


@pytest.mark.django_db
def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    stderr = io.StringIO()
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out), stderr=stderr)
    text = out.read_text()
    for route in (
        "/api/v1/experiments/{id}/gc-preview:",
        "/api/v1/checkpoints/{uuid}:",
        "/api/v1/trials/{trial_id}/checkpoints:",
        "/api/v1/trials/{id}:",
        "/api/v1/gc-runs/{id}:",
        "/api/v1/models/{name}:",
        "/api/v1/models/{name}/versions:",
        "/api/v1/models/{name}/versions/{version}:",
        "/api/v1/models/{name}/versions/{version}/download:",
    ):
        assert route in text


@pytest.mark.django_db
def test_swagger_ui_is_served_without_a_cdn(alice_api):
    response = alice_api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    for cdn in ("cdn.", "unpkg.com", "jsdelivr"):
        assert cdn not in html


def generated_schema() -> dict:
    """The OpenAPI document exactly as /api/schema/ serves it (same generator, settings)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


# Loaded at collection (schemathesis' lazy fixture loader does not run under pytest 9);
# test_served_schema_is_the_tested_schema ties it to what the live server serves.
schema = (
    schemathesis.openapi.from_dict(generated_schema())
    # Archives and files are binary streams with their own tests; the storage scan routes
    # are staff tools tested in the storage app; DELETE only ever 404s or empties the data.
    .exclude(path_regex=r"/(download|files/|storage|orphan-deletions)")
    .exclude(method="DELETE")
)
# The coverage phase enumerates every boundary case of every parameter (minutes on two
# cores); bounded fuzzing (max_examples below) plus explicit examples keep this ~1 min.
schema.config.phases.coverage.enabled = False


@pytest.fixture
def live_api(live_server, transactional_db, alice, default_storage):
    """The live server's URL and alice's token header, with a little data ids can hit."""
    from ckptweb.accounts.services import create_token

    token = create_token(alice, "test")[1]
    experiment = make_experiment(alice, default_storage)
    trial = services.create_trial(experiment)
    add_checkpoints(trial, [(1, 0.5), (2, None)])
    return live_server.url, {"Authorization": f"Token {token}"}


def test_served_schema_is_the_tested_schema(live_api):
    import requests
    import yaml

    url, headers = live_api
    response = requests.get(f"{url}/api/schema/", headers=headers, timeout=30)
    assert response.status_code == 200
    assert yaml.safe_load(response.text) == generated_schema()


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_live_api_conforms_to_its_schema(case, live_api):
    url, headers = live_api
    case.call_and_validate(
        base_url=url,
        headers=headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
