"""The one writer of ``ApiToken``: create, revoke, mark used; and who sees which tokens.

Creating and revoking record ``token.create`` / ``token.revoke`` audit events naming the
token by id and name, never by key. ``det user login`` tokens (``DetToken``) are written by
``ckptweb.detcompat.auth``; the Tokens page revokes them through it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from knox.models import get_digest_token
from knox.settings import CONSTANTS

from ckptweb.accounts.models import ApiToken
from ckptweb.audit.models import Action
from ckptweb.audit.record import record
from ckptweb.detcompat.models import DetToken

#: ``last_used_at`` is written at most once per this interval per token (not per request).
USE_RESOLUTION = timedelta(minutes=1)


def _described(token: ApiToken) -> dict:
    expiry = token.expiry.isoformat() if token.expiry else None
    return {
        "kind": "api",
        "id": token.pk,
        "name": token.name,
        "user": token.user.get_username(),
        "expires_at": expiry,
    }


def create_token(user, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token of ``user``; returns the row and the key (the only time it exists)."""
    digest, key = get_digest_token()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
        digest=digest,
        expiry=expires_at,
    )
    record(Action.TOKEN_CREATE, "token", token.pk, owner_id=user.pk, after=_described(token))
    return token, key


def revoke_token(token: ApiToken) -> None:
    """Delete the token: requests carrying its key get 401 from now on."""
    before = _described(token)
    ApiToken.objects.filter(pk=token.pk).delete()
    record(Action.TOKEN_REVOKE, "token", token.pk, owner_id=token.user_id, before=before)


def mark_used(token: ApiToken, now: datetime | None = None) -> None:
    """Set ``last_used_at`` unless it was set less than ``USE_RESOLUTION`` ago (one
    conditional UPDATE, so concurrent requests write it once)."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < USE_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - USE_RESOLUTION)
    if ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now):
        token.last_used_at = now


def may_manage(user, token_user_id: int) -> bool:
    """Owners manage their tokens; staff manage everyone's."""
    return user.is_staff or token_user_id == user.pk


def api_tokens(user, *, everyone: bool = False):
    """``user``'s API tokens; staff asking for ``everyone`` get every user's."""
    tokens = ApiToken.objects.select_related("user")
    if everyone and user.is_staff:
        return tokens
    return tokens.filter(user=user)


def det_tokens(user, *, everyone: bool = False):
    """``user``'s unexpired ``det user login`` tokens (staff: everyone's, on request)."""
    tokens = DetToken.objects.select_related("user").filter(expires_at__gt=timezone.now())
    if everyone and user.is_staff:
        return tokens
    return tokens.filter(user=user)
