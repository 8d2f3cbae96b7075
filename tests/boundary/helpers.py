"""Helpers of the attack tests: raw JSON posting, and every page and list another user sees."""

from __future__ import annotations

import json

from experiments.models import Checkpoint, Experiment, Trial


def post_raw(client, url: str, text: str | bytes, method: str = "post"):
    """Send ``text`` as the JSON body exactly as given (lone surrogates, NaN, deep nesting)."""
    body = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return getattr(client, method)(url, data=body, content_type="application/json")


def dumps(value) -> str:
    """JSON text with every non-ASCII character escaped (so lone surrogates survive)."""
    return json.dumps(value, ensure_ascii=True)


def pages_of_everything() -> list[str]:
    """Every page and API list that shows data another user stored."""
    urls = ["/", "/storage/", "/api/v1/experiments", "/api/v1/experiments?ordering=name"]
    for experiment in Experiment.objects.all():
        urls += [
            f"/experiments/{experiment.pk}/",
            f"/experiments/{experiment.pk}/gc/",
            f"/experiments/{experiment.pk}/gc/preview/?save_experiment_best=0"
            "&save_trial_best=0&save_trial_latest=0",
            f"/api/v1/experiments/{experiment.pk}",
            f"/api/v1/experiments/{experiment.pk}/checkpoints",
            f"/api/v1/experiments/{experiment.pk}/gc-preview",
        ]
    for trial in Trial.objects.all():
        urls += [f"/trials/{trial.pk}/", f"/api/v1/trials/{trial.pk}"]
    for checkpoint in Checkpoint.objects.all():
        urls += [f"/checkpoints/{checkpoint.uuid}/", f"/api/v1/checkpoints/{checkpoint.uuid}"]
    return urls
