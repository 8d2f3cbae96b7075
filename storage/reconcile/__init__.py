"""Storage reconciliation: compare what a storage holds with what the database says.

``scan`` (the merge-join of a storage's listing with its checkpoints), ``orphans``
(deleting orphaned directories safely), ``actions`` (starting both, and the actions on
single findings), ``tasks`` (their Celery tasks), ``views``/``urls`` (the staff pages) and
``api``/``api_urls`` (the staff REST API). Scans and deletions are runs with the lifecycle
of ``ckptweb.jobs``.
"""
