"""Helpers of the page tests: the checkpoint page's HTML, a checkpoint with real files, the
rows the ORM fetched."""

import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db.models.signals import post_init
from django.urls import reverse

from experiments import services
from experiments.demo import checkpoint_root


def page(client, checkpoint) -> str:
    return client.get(reverse("experiments:checkpoint", args=[checkpoint.uuid])).content.decode()


def checkpoint_with_files(experiment, files: dict[str, bytes], steps: int = 900):
    """Write ``files`` under the checkpoint's directory on shared_fs and report it."""
    trial = experiment.trials.first()
    checkpoint_uuid = uuid.uuid4()
    root = Path(checkpoint_root(experiment.storage)) / str(checkpoint_uuid)
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return services.report_checkpoint(
        trial,
        steps,
        resources={p: len(c) for p, c in files.items()},
        uuid=checkpoint_uuid,
        metadata={"framework": "<b>bold</b>"},
    )


@contextmanager
def instances_made(model):
    """The ``model`` instances the ORM builds inside the block (one per row it fetched)."""
    made = []

    def record(sender, instance, **kwargs):
        made.append(instance)

    post_init.connect(record, sender=model)
    try:
        yield made
    finally:
        post_init.disconnect(record, sender=model)
