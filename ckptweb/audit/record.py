"""Recording audit events: the one writer of ``AuditEvent``.

``AuditMiddleware`` keeps the request being served in a context variable; ``record`` reads the
person (``request.user``, which DRF's token authentication sets on the request too) and the
address (``ckptweb.lib.addresses.client_ip``) from it when an event is recorded, so the
services record events without taking the request as an argument. Outside a request (a
Celery worker, the sweep, a management command) the actor is the system: no user, no address.

``before`` and ``after`` are the values an action changed, as JSON. They never hold a secret:
callers pass values already redacted (``storage`` passes its redacted fields, tokens their
name and id, never their key).
"""

from __future__ import annotations

import contextvars
import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ckptweb.audit.models import Action, AuditEvent
from ckptweb.lib.addresses import client_ip

logger = logging.getLogger(__name__)

#: Longest list of names (checkpoint uuids, globs) kept in one event; the rest are counted.
MAX_LISTED = 100

_request: contextvars.ContextVar = contextvars.ContextVar("ckptweb_audit_request", default=None)


class AuditMiddleware:
    """Keep the request being served for ``record`` (then forget it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def listed(names) -> dict:
    """``{"items": [...], "count": n}`` with at most ``MAX_LISTED`` names."""
    names = [str(name) for name in names]
    return {"items": names[:MAX_LISTED], "count": len(names)}


def record(
    action: Action,
    target_type: str,
    target_id="",
    *,
    experiment_id: int | None = None,
    owner_id: int | None = None,
    before=None,
    after=None,
    actor=None,
    request=None,
) -> AuditEvent:
    """Append one event; the actor and address are the current request's unless given."""
    request = request if request is not None else _request.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if getattr(user, "is_authenticated", False) else None
    ip = None
    if request is not None:
        ip = client_ip(request) or None
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        ip=ip,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        experiment_id=experiment_id,
        owner_id=owner_id,
        before=before,
        after=after,
    )


def signed_in(sender, request, user, **kwargs) -> None:
    """``user_logged_in``: a web (or admin) sign-in."""
    path = getattr(request, "path", "") or ""
    after = {"via": "det" if path.startswith("/det-compat/") else "web"}
    record(
        Action.SIGN_IN, "user", user.pk, owner_id=user.pk, actor=user, request=request, after=after
    )


def sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    """``user_login_failed``: the username tried (Django has already hidden the password)."""
    username = str((credentials or {}).get("username", ""))[:150]
    record(Action.SIGN_IN_FAILED, "user", username, request=request, after={"username": username})


def prune(now=None) -> int:
    """Delete the events older than ``CKPTWEB_AUDIT_RETENTION_DAYS`` (0 keeps them all);
    how many went. Called by the GC sweep."""
    days = settings.CKPTWEB_AUDIT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(at__lt=cutoff).delete()
    if deleted:
        logger.info("Pruned %s audit events older than %s days", deleted, days)
    return deleted
