"""schemathesis' stateful phase over the whole API: chains of calls, 0 server errors.

Our schema has no hand-written OpenAPI links; schemathesis 4 infers them from the schema
(dependency analysis: ``POST experiments`` → ``{id}`` → trials → checkpoints → ``{uuid}``
…), so the state machine creates resources and then reads, changes and deletes them. The
only check is ``not_a_server_error``: bad input must be a 4xx, whatever order it comes in.
Everything is included (DELETE, downloads, storage routes); the user is not staff, so
nothing can make the server open a connection to a generated ``endpoint_url``.

The calls go to the WSGI application in this thread, and each scenario runs in a savepoint
that is rolled back at its end: every scenario starts from the same database, as
Hypothesis requires (with a live server, responses would depend on earlier scenarios and
Hypothesis reports flaky data generation).
"""

import zlib

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from experiments import services
from tests.experiments.api.test_schema import generated_schema
from tests.factories import add_checkpoints, make_experiment

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

schema = schemathesis.openapi.from_dict(generated_schema())
schema.config.phases.stateful.enabled = True
VALID_CONFIG = {
    "name": "stateful",
    "searcher": {"metric": "loss"},
    "checkpoint_storage": {"save_trial_latest": 1},
}


@pytest.fixture
def token_headers(alice, default_storage):
    """alice's token header, with a little data that generated ids can hit."""
    from ckptweb.accounts.services import create_token

    experiment = make_experiment(alice, default_storage)
    add_checkpoints(services.create_trial(experiment), [(1, 0.5), (2, None)])
    return {"Authorization": f"Token {create_token(alice, 'test')[1]}"}


def test_stateful_phase_finds_links():
    schema.as_state_machine()
    assert schema.statistic.transitions.total > 5, "no links inferred: nothing stateful"


def test_stateful_sequences_get_no_server_error(token_headers):
    calls = []
    app = WSGIHandler()

    class Machine(schema.as_state_machine()):
        def setup(self):
            self._scenario = transaction.atomic()
            self._scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)

        def before_call(self, case):
            # Random YAML is almost never a valid config, so chains would stop at the
            # first step: about half the experiments are created from a valid config.
            if (
                (case.method, case.path) == ("POST", "/api/v1/experiments")
                and isinstance(case.body, dict)
                and zlib.crc32(repr(case.body).encode()) % 2  # a function of the draw
            ):
                case.body = {**case.body, "config": VALID_CONFIG}

        def after_call(self, response, case):
            calls.append((case.method, case.path, response.status_code))

        def get_call_kwargs(self, case):
            return {"app": app, "headers": token_headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error], transport_kwargs=kwargs)

    # As Django's test client does: a request's end must not close the connection that
    # holds the test's transaction (PostgreSQL would lose it; SQLite in memory ignores it).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        Machine.run(
            settings=settings(
                max_examples=100,
                stateful_step_count=10,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    reached = sorted({(method, path) for method, path, status in calls if status < 300})
    assert len(calls) > 200, calls[:20]
    # Chains really happened: an experiment created, then a trial in it.
    assert {
        ("POST", "/api/v1/experiments"),
        ("POST", "/api/v1/experiments/{experiment_id}/trials"),
    } <= set(reached), reached
    assert len(reached) >= 8, reached
