"""Batch reporting calls of ``ckptweb.client.Client`` (docs/architecture.md "Scale contract").

``BatchCalls`` is a mixin over the client's ``request``. One call sends up to
``BATCH_SIZE`` reports in one request, stored by the server in one transaction (all or
none); longer lists go as consecutive batches, each all or none. A refused batch raises
``ApiError`` whose ``body["items"]`` maps each refused item's index (within that batch)
to its field errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: The server's limit per request (experiments.batch.MAX_BATCH).
BATCH_SIZE = 1000


def _batches(items: Iterable[dict]) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def _checkpoint_body(report: dict) -> dict:
    """A checkpoint report with its uuid as text (uuid.UUID objects are fine to pass)."""
    if report.get("uuid") is None:
        return {key: value for key, value in report.items() if key != "uuid"}
    return {**report, "uuid": str(report["uuid"])}


class BatchCalls:
    """Report many checkpoints or validations of one trial in few requests."""

    def report_checkpoints(self, trial_id: int, reports: Iterable[dict]) -> list[dict]:
        """Report checkpoints ``[{steps_completed, resources?, metadata?, uuid?}, …]`` whose
        files are already on storage; returns ``[{id, uuid, state}, …]`` in order."""
        bodies = (_checkpoint_body(report) for report in reports)
        return self._report_batches(f"trials/{trial_id}/checkpoints:batch", bodies)

    def report_validations(self, trial_id: int, reports: Iterable[dict]) -> list[dict]:
        """Report validations ``[{steps_completed, metrics}, …]``; the created ones in order."""
        return self._report_batches(f"trials/{trial_id}/validations:batch", reports)

    def _report_batches(self, path: str, items: Iterable[dict]) -> list[dict]:
        created: list[dict] = []
        for batch in _batches(items):
            created += self.request("POST", path, json={"items": batch})["items"]
        return created
