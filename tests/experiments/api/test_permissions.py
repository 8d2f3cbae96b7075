"""Permission matrix: anonymous, bob (other user), alice (owner), staff × every endpoint.

Any signed-in user reads; only the owner or staff change, report into, or delete an
experiment and its checkpoints; anonymous requests get 401 everywhere.
"""

import pytest

from experiments import services
from experiments.gc import runs
from tests.factories import client_for

pytestmark = pytest.mark.django_db

UUID_ZERO = "00000000-0000-0000-0000-000000000000"

# name: (method, url template, body, expected status for alice/staff)
ENDPOINTS = {
    "experiments-list": ("get", "/api/v1/experiments", None, 200),
    "experiments-create": (
        "post",
        "/api/v1/experiments",
        {"config": {"name": "n", "searcher": {"metric": "m"}}},
        201,
    ),
    "experiment-get": ("get", "/api/v1/experiments/{e}", None, 200),
    "experiment-patch": ("patch", "/api/v1/experiments/{e}", {"state": "PAUSED"}, 200),
    "experiment-delete": ("delete", "/api/v1/experiments/{e}", None, 202),
    "experiment-checkpoints": ("get", "/api/v1/experiments/{e}/checkpoints", None, 200),
    "experiment-gc-preview": ("get", "/api/v1/experiments/{e}/gc-preview", None, 200),
    # The checkpoint here has no validation metric, so there is no best one: a JSON 404.
    "experiment-best-checkpoint": ("get", "/api/v1/experiments/{e}/best-checkpoint", None, 404),
    "experiment-gc-policy": (
        "put",
        "/api/v1/experiments/{e}/gc-policy",
        {"save_experiment_best": 1, "save_trial_best": 1, "save_trial_latest": 1},
        202,
    ),
    "experiment-trials-list": ("get", "/api/v1/experiments/{e}/trials", None, 200),
    "experiment-trials-create": ("post", "/api/v1/experiments/{e}/trials", {"hparams": {}}, 201),
    "trial-get": ("get", "/api/v1/trials/{t}", None, 200),
    "trial-patch": ("patch", "/api/v1/trials/{t}", {"state": "PAUSED"}, 200),
    "trial-validations-list": ("get", "/api/v1/trials/{t}/validations", None, 200),
    "trial-validations-create": (
        "post",
        "/api/v1/trials/{t}/validations",
        {"steps_completed": 5, "metrics": {"loss": 1}},
        201,
    ),
    "trial-metrics-list": ("get", "/api/v1/trials/{t}/metrics", None, 200),
    "trial-metrics-create": (
        "post",
        "/api/v1/trials/{t}/metrics",
        {"group": "training", "steps_completed": 5, "metrics": {"loss": 1}},
        201,
    ),
    "trial-checkpoints-list": ("get", "/api/v1/trials/{t}/checkpoints", None, 200),
    "trial-checkpoints-create": (
        "post",
        "/api/v1/trials/{t}/checkpoints",
        {"steps_completed": 5},
        201,
    ),
    "trial-checkpoints-batch": (
        "post",
        "/api/v1/trials/{t}/checkpoints:batch",
        {"items": [{"steps_completed": 6}]},
        201,
    ),
    "trial-validations-batch": (
        "post",
        "/api/v1/trials/{t}/validations:batch",
        {"items": [{"steps_completed": 6, "metrics": {"loss": 1}}]},
        201,
    ),
    "trial-uploads-create": (
        "post",
        "/api/v1/trials/{t}/uploads",
        {"steps_completed": 7, "files": [{"path": "a.bin", "size": 1}]},
        201,
    ),
    "checkpoint-get": ("get", "/api/v1/checkpoints/{c}", None, 200),
    "checkpoint-patch-metadata": ("patch", "/api/v1/checkpoints/{c}", {"metadata": {"a": 1}}, 200),
    "checkpoint-patch-protected": ("patch", "/api/v1/checkpoints/{c}", {"protected": True}, 200),
    "checkpoint-delete": ("delete", "/api/v1/checkpoints/{c}", None, 202),
    "checkpoint-rm": ("post", "/api/v1/checkpoints/{c}/rm", {"globs": ["*.pth"]}, 202),
    "checkpoint-download": ("get", "/api/v1/checkpoints/{c}/download", None, 200),
    "checkpoint-file": ("get", "/api/v1/checkpoints/{c}/files/state-dict.pth", None, 200),
    # Direct URLs are a read; this checkpoint is on shared_fs, which has none (409).
    "checkpoint-urls": ("get", "/api/v1/checkpoints/{c}/urls", None, 409),
    "gc-runs-list": ("get", "/api/v1/gc-runs", None, 200),
    "gc-run-get": ("get", "/api/v1/gc-runs/{g}", None, 200),
    # Every signed-in user reads the audit log (filtered to what concerns them).
    "audit-events": ("get", "/api/v1/audit-events", None, 200),
    # Everyone lists and makes their own tokens; alice's token is revoked by her or staff.
    "tokens-list": ("get", "/api/v1/tokens", None, 200),
    "tokens-create": ("post", "/api/v1/tokens", {"name": "laptop"}, 201),
    "token-delete": ("delete", "/api/v1/tokens/{k}", None, 204),
}
#: What every signed-in user may create: their own experiments and tokens.
OWN_CREATES = {"experiments-create", "tokens-create"}
READS = {name for name, (method, *_rest) in ENDPOINTS.items() if method == "get"}


def expected_status(persona: str, name: str) -> int:
    """The matrix: anonymous 401; bob reads and creates his own experiments, else 403."""
    success = ENDPOINTS[name][3]
    if persona == "anonymous":
        return 401
    if persona == "bob" and name not in READS and name not in OWN_CREATES:
        return 403
    return success


@pytest.fixture
def objects(alice, default_storage, tmp_path):
    """alice's experiment, trial, checkpoint (with a file on storage), GC run and API token."""
    from pathlib import Path

    from ckptweb.accounts.services import create_token
    from tests.factories import make_experiment

    experiment = make_experiment(alice, default_storage)
    trial = services.create_trial(experiment)
    checkpoint = services.report_checkpoint(trial, 1, resources={"state-dict.pth": 3})
    directory = Path(default_storage.host_path) / str(checkpoint.uuid)
    directory.mkdir()
    (directory / "state-dict.pth").write_bytes(b"abc")
    run = runs.start_gc_run(experiment, "SWEEP")
    token, _key = create_token(alice, "alice's laptop")
    return {"e": experiment.pk, "t": trial.pk, "c": checkpoint.uuid, "g": run.pk, "k": token.pk}


@pytest.fixture
def clients(alice, bob, staff):
    result = {"anonymous": client_for(api=True)}
    for name, user in (("bob", bob), ("alice", alice), ("staff", staff)):
        result[name] = client_for(user, api=True)
    return result


@pytest.mark.parametrize("persona", ["anonymous", "bob", "alice", "staff"])
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_matrix(clients, objects, persona, name):
    method, template, body, _success = ENDPOINTS[name]
    url = template.format(**objects)
    response = getattr(clients[persona], method)(url, body, format="json")
    assert response.status_code == expected_status(persona, name), (
        persona,
        name,
        response.status_code,
        getattr(response, "data", None),
    )
    if persona == "anonymous":
        assert response["WWW-Authenticate"].startswith("Token")


def test_the_matrix_covers_every_api_route():
    """Every experiments API route and checkpoint download route is in ENDPOINTS.

    (The storage scan routes are staff tools with their own tests in the storage app.)
    """
    from django.urls import get_resolver, resolve

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern).removeprefix("^")

    api_routes = {
        route
        for route in walk(get_resolver().url_patterns)
        if route.startswith(
            (
                "api/v1/experiments",
                "api/v1/trials",
                "api/v1/checkpoints",
                "api/v1/gc-runs",
                "api/v1/audit-events",
                "api/v1/tokens",
            )
        )
    }
    assert len(api_routes) >= 14
    ids = {"e": 1, "t": 1, "c": UUID_ZERO, "g": 1, "k": 1}
    covered = {resolve(template.format(**ids)).route for _m, template, *_ in ENDPOINTS.values()}
    assert api_routes - covered == set()
