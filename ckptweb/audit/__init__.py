"""The audit log: who deleted what, and who changed who may do what (``docs/architecture.md``
"Audit").

A layer of its own between the kernel and the apps: ``storage`` and ``experiments`` record
events through ``ckptweb.audit.record``; the log imports no app. ``AuditMiddleware`` keeps the
current request, so a service records the person and the address of the request that called
it without every service taking them as arguments; work with no request (a Celery worker,
the sweep) is recorded as the system's.
"""
