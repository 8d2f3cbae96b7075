"""The serializers check JSON values with ``ckptweb.lib.limits.check_json``, the parser's
own check: a bad value sent as a form body is refused with the words it gets in a JSON body
(before, a form body's NUL got the serializers' own walk and message, e.g. "hparams must not
contain NUL characters.", where JSON said "hparams.note: strings must not contain NUL
characters.")."""

from __future__ import annotations

import pytest

from experiments import services


@pytest.mark.parametrize(
    ("method", "path", "form", "body", "message"),
    [
        (
            "post",
            "/api/v1/experiments/{experiment}/trials",
            {"hparams.note": "a\x00b"},
            {"hparams": {"note": "a\x00b"}},
            "hparams.note: strings must not contain NUL characters.",
        ),
        (
            "patch",
            "/api/v1/checkpoints/{checkpoint}",
            {"metadata.k": "a\x00b"},
            {"metadata": {"k": "a\x00b"}},
            "metadata.k: strings must not contain NUL characters.",
        ),
        (
            "post",
            "/api/v1/experiments",
            {"name": "x", "config": "searcher: {metric: loss}\x00"},
            {"name": "x", "config": "searcher: {metric: loss}\x00"},
            "config: strings must not contain NUL characters.",
        ),
    ],
)
def test_a_form_body_is_refused_as_the_json_body(
    alice_api, trial, method, path, form, body, message
):
    checkpoint = services.report_checkpoint(trial, 7, {"w.bin": 1})
    url = path.format(experiment=trial.experiment_id, checkpoint=checkpoint.uuid)
    send = getattr(alice_api, method)
    as_json = send(url, body, format="json")
    as_form = send(url, form)
    assert as_json.status_code == as_form.status_code == 400
    assert as_json.json() == as_form.json()
    assert as_form.json()["message"].endswith(message)
