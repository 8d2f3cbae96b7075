"""An oracle of the GC retention rules, independent of ``experiments/retention.py``.

Plain Python over rows the tests generated themselves, following the spec
(docs/spec/exporting-checkpoints.rst, "Checkpoint Garbage Collection") and
docs/architecture.md "Retention", so a bug in the SQL ranking cannot hide in its own
oracle. A row is a dict: ``id``, ``trial``, ``steps``, ``metric`` (None when the checkpoint
has no validation), ``state``, ``protected`` and optionally ``registered`` (pinned by a
model version).
"""

from __future__ import annotations

#: The GC candidates: only these states are ever kept or deleted by a policy.
CANDIDATE_STATES = ("COMPLETED", "PARTIALLY_DELETED")


def reference_retained(rows, smaller_is_better: bool, policy) -> list[int]:
    """Ids a ``(save_experiment_best, save_trial_best, save_trial_latest)`` policy keeps.

    The union of: the best ``save_experiment_best`` candidates with a metric over all
    trials; per trial its best ``save_trial_best`` with a metric and its latest
    ``save_trial_latest``; every protected or registered candidate. "Best" is the metric
    (ascending when smaller is better), ties to fewer steps, then the smaller id; "latest"
    is most steps, ties to the larger id. Ids descending.
    """
    exp_best, trial_best, latest = policy
    candidates = [r for r in rows if r["state"] in CANDIDATE_STATES]

    def best_key(r):
        metric = r["metric"] if smaller_is_better else -r["metric"]
        return (metric, r["steps"], r["id"])

    with_metric = [r for r in candidates if r["metric"] is not None]
    keep = {r["id"] for r in sorted(with_metric, key=best_key)[:exp_best]}
    for trial in {r["trial"] for r in candidates}:
        mine = [r for r in candidates if r["trial"] == trial]
        mine_metric = [r for r in mine if r["metric"] is not None]
        keep |= {r["id"] for r in sorted(mine_metric, key=best_key)[:trial_best]}
        keep |= {r["id"] for r in sorted(mine, key=lambda r: (-r["steps"], -r["id"]))[:latest]}
    keep |= {r["id"] for r in candidates if r["protected"] or r.get("registered")}
    return sorted(keep, reverse=True)
