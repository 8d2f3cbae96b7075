"""Builds checkpoints (rows and files) on one store for a reconciliation test."""

from __future__ import annotations

import json
import os
import time
import uuid as uuid_lib

from tests.stores import Store

#: A time well outside any grace period used here (two hours ago).
OLD = time.time() - 2 * 3600


class Planter:
    """Builds checkpoints (rows and files) on one store for a test."""

    def __init__(self, store: Store, owner):
        from experiments.models import Experiment, Trial

        self.store = store
        self.experiment = Experiment.objects.create(
            owner=owner, name="reconcile", searcher_metric="loss", storage=store.config
        )
        self.trial = Trial.objects.create(experiment=self.experiment)

    def checkpoint(self, recorded: dict[str, int], stored: dict[str, bytes], state="COMPLETED"):
        """A checkpoint row recording ``recorded`` sizes, with ``stored`` files on storage."""
        from experiments.models import Checkpoint

        checkpoint = Checkpoint.objects.create(
            trial=self.trial,
            steps_completed=Checkpoint.objects.count() + 1,
            state=state,
            resources=recorded,
            size_bytes=sum(recorded.values()),
        )
        self.files(checkpoint.uuid, stored)
        return checkpoint

    def live(self, files: dict[str, bytes], state="COMPLETED"):
        """A checkpoint whose files match its record."""
        return self.checkpoint({p: len(d) for p, d in files.items()}, files, state=state)

    def directory(self, files: dict[str, bytes], name=None) -> str:
        """A directory no checkpoint row knows; returns its name."""
        name = name or str(uuid_lib.uuid4())
        self.files(name, files)
        return name

    def orphan_with_metadata(self, **metadata) -> str:
        return self.directory(
            {"metadata.json": json.dumps(metadata).encode(), "weights.bin": b"w" * 100}
        )

    def files(self, name, files: dict[str, bytes]) -> None:
        self.store.put_files(name, files)
        self.age(name)

    def age(self, name) -> None:
        """Backdate a directory outside the grace period (file systems only)."""
        if self.store.kind != "shared_fs":
            return
        base = self.store.root / str(name)
        for dirpath, _dirs, filenames in os.walk(base):
            for filename in filenames:
                os.utime(os.path.join(dirpath, filename), (OLD, OLD))
            os.utime(dirpath, (OLD, OLD))

    def young(self, name) -> None:
        """Make a (shared_fs) directory recently written to."""
        now = time.time()
        os.utime(self.store.root / str(name), (now, now))
