"""Arbitrary JSON at every write endpoint, then every page and list must still answer 200.

Hypothesis sends, as alice (not staff): bodies shaped like each endpoint's fields but with
arbitrary values (deep, odd Unicode including lone surrogates — JSON encodes them as
``\\ud800`` escapes —, NUL, extreme integers and floats), "almost valid" bodies with one
hostile field, and raw bodies no JSON encoder produces (nesting 100,000 deep, ``1e400``,
``NaN``, invalid UTF-8). Each answer must be below 500. Whatever got stored, the pages and
lists of alice, *of bob* (another user) and of staff must then answer 200: bad input is refused at
the boundary or rendered harmlessly, never a 500 for everyone.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments import services
from experiments.models import Checkpoint, Experiment, GCRun, Trial
from tests.factories import client_for

# Each request commits on its own, as served: a database error in one (PostgreSQL refuses
# a lone surrogate in JSON) must not poison the others through a shared test transaction.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ODD_STRINGS = [
    "\ud800",
    "a\udfffb",
    "\udbff\udc00x\ud800",
    "\x00",
    "nul\x00key",
    "\u202eevil",
    "\ufeff",
    "💥" * 8,
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "a" * 5000,
    "",
]
EXTREME_NUMBERS = [
    2**62,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    2**50 + 1,
    -1,
    1e308,
    -1e308,
    1.7976931348623157e308,
    5e-324,
    -0.0,
]
text = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=20),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EXTREME_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)
steps = st.one_of(st.integers(0, 10**6), st.sampled_from(EXTREME_NUMBERS), json_values)
YAML_TEXTS = [
    "searcher: {metric: loss}\nhyperparameters: {lr: .inf}\n",
    "searcher: {metric: loss}\nwhen: 2024-01-01\n",
    'searcher: {metric: "\\ud800"}\n',
    "searcher: {metric: loss}\nb: !!binary aGk=\n",
    "searcher: {metric: loss}\nn: " + "9" * 5000 + "\n",
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "searcher: {metric: loss}\n",
    "[" * 600 + "]" * 600,
]


def endpoint_bodies(ids):
    """(method, url, body strategy) of every write endpoint alice may call."""
    e, t, c = ids["experiment"], ids["trial"], ids["checkpoint"]
    config = st.one_of(
        st.sampled_from(YAML_TEXTS),
        json_values,
        st.fixed_dictionaries(
            {"searcher": st.fixed_dictionaries({"metric": text})},
            optional={"hyperparameters": json_values, "name": text, "description": text},
        ),
    )
    return [
        (
            "POST",
            "/api/v1/experiments",
            st.fixed_dictionaries({}, optional={"name": text, "config": config}),
        ),
        (
            "PATCH",
            f"/api/v1/experiments/{e}",
            st.fixed_dictionaries(
                {}, optional={"state": json_values, "name": json_values, "description": json_values}
            ),
        ),
        (
            "PUT",
            f"/api/v1/experiments/{e}/gc-policy",
            st.dictionaries(
                st.sampled_from(["save_experiment_best", "save_trial_best", "save_trial_latest"]),
                steps,
            ),
        ),
        (
            "POST",
            f"/api/v1/experiments/{e}/trials",
            st.fixed_dictionaries({}, optional={"hparams": json_values}),
        ),
        (
            "POST",
            f"/api/v1/trials/{t}/validations",
            st.fixed_dictionaries(
                {
                    "steps_completed": steps,
                    "metrics": st.one_of(st.dictionaries(text, scalars, max_size=3), json_values),
                }
            ),
        ),
        (
            "POST",
            f"/api/v1/trials/{t}/checkpoints",
            st.fixed_dictionaries(
                {"steps_completed": steps},
                optional={
                    "uuid": json_values,
                    "resources": st.one_of(
                        st.dictionaries(
                            text,
                            st.one_of(st.integers(), st.sampled_from(EXTREME_NUMBERS)),
                            max_size=3,
                        ),
                        json_values,
                    ),
                    "metadata": json_values,
                },
            ),
        ),
        (
            "PATCH",
            f"/api/v1/checkpoints/{c}",
            st.fixed_dictionaries({}, optional={"metadata": json_values, "protected": json_values}),
        ),
    ]


RAW_BODIES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'{"steps_completed": 1, "metrics": {"loss": 1e400}}',
    b'{"steps_completed": 1, "metrics": {"loss": NaN}}',
    b'{"hparams": {"lr": Infinity}}',
    b'{"metadata": {"\\ud800": "\\udfff"}}',
    b'{"name": "\xff\xfe"}',
    b"\x00",
    b"",
    b"null",
    b"[]",
]


@pytest.fixture
def targets(alice, default_storage):
    experiment = services.create_experiment(
        alice, {"name": "target", "searcher": {"metric": "loss"}}
    )
    trial = services.create_trial(experiment)
    checkpoint = services.report_checkpoint(trial, 1, resources={"w.bin": 1})
    return {"experiment": experiment.pk, "trial": trial.pk, "checkpoint": checkpoint.uuid}


POLICY_QUERY = "save_experiment_best=1&save_trial_best=1&save_trial_latest=1"


def page_urls() -> list[str]:
    """Every page and list, for every experiment, trial, checkpoint and GC run there is."""
    urls = [
        "/",
        "/api/v1/experiments",
        "/api/v1/gc-runs",
        "/api/v1/experiments?ordering=-id",
    ]
    for pk in Experiment.objects.values_list("pk", flat=True):
        urls += [
            f"/experiments/{pk}/",
            f"/experiments/{pk}/gc/",
            f"/experiments/{pk}/gc/preview/?{POLICY_QUERY}",
            f"/api/v1/experiments/{pk}",
            f"/api/v1/experiments/{pk}/checkpoints",
            f"/api/v1/experiments/{pk}/trials",
            f"/api/v1/experiments/{pk}/gc-preview",
        ]
    for pk in Trial.objects.values_list("pk", flat=True)[:50]:
        urls += [f"/trials/{pk}/", f"/api/v1/trials/{pk}", f"/api/v1/trials/{pk}/checkpoints"]
    for uuid in Checkpoint.objects.values_list("uuid", flat=True)[:50]:
        urls += [f"/checkpoints/{uuid}/", f"/api/v1/checkpoints/{uuid}"]
    for pk in GCRun.objects.values_list("pk", flat=True)[:20]:
        urls += [f"/gc-runs/{pk}/card/", f"/api/v1/gc-runs/{pk}"]
    return urls


def test_arbitrary_json_at_every_write_endpoint(
    alice, bob, staff, targets, django_capture_on_commit_callbacks
):
    api = client_for(alice, api=True, raise_request_exception=False)  # a crash is a 500
    endpoints = endpoint_bodies(targets)
    server_errors: list[str] = []

    def send(method: str, url: str, raw: bytes) -> None:
        with django_capture_on_commit_callbacks(execute=True):  # GC runs execute, as served
            response = api.generic(method, url, raw, content_type="application/json")
        if response.status_code >= 500:
            server_errors.append(f"{method} {url} {raw[:80]!r} -> {response.status_code}")

    for method, url, _ in endpoints:
        for raw in RAW_BODIES:
            send(method, url, raw)

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def fuzz(data):
        method, url, bodies = data.draw(st.sampled_from(endpoints))
        body = data.draw(st.one_of(bodies, json_values))
        send(method, url, json.dumps(body).encode())  # ensure_ascii: surrogates as \ud800

    fuzz()
    assert Experiment.objects.count() > 1 or Trial.objects.count() > 1  # something got stored
    broken = []
    for user in (alice, bob, staff):
        client = client_for(user, raise_request_exception=False)
        for url in page_urls() + (["/storage/"] if user.is_staff else []):
            response = client.get(url)
            if response.status_code != 200:
                broken.append(f"{user.username} GET {url} -> {response.status_code}")
    failures = server_errors[:20] + broken[:20]
    assert not failures, (
        f"{len(server_errors)} server errors, {len(broken)} broken pages:\n" + "\n".join(failures)
    )
