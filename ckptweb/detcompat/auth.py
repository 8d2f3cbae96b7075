"""Determined logins and Bearer tokens.

``det_login`` checks a username and password the way Determined sends them (pre-hashed,
``isHashed: true``, verified with ``DeterminedPBKDF2PasswordHasher.verify_prehashed``; or
raw, verified by Django). It is throttled like the web sign-in, by django-axes (settings.py
``AXES_*``): a locked (username, address) pair is refused with a 429 before any hash is
computed, and the outcome is sent as Django's ``user_login_failed`` / ``user_logged_in``
signals, which axes counts (a success clears the pair's failures).

``issue_token`` stores only the SHA-256 of a random token, valid for
``settings.CKPTWEB_DET_TOKEN_HOURS``; ``DetBearerAuthentication`` accepts
``Authorization: Bearer <token>`` and answers 401 for a missing, unknown or expired one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from ckptweb.audit.models import Action
from ckptweb.audit.record import record
from ckptweb.detcompat.hashers import DeterminedPBKDF2PasswordHasher, det_prehash
from ckptweb.detcompat.models import DetToken

#: One message for every failed login, so it tells nobody which usernames exist. Determined
#: prints "invalid credentials" as is.
INVALID_CREDENTIALS = "invalid credentials"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_lifetime() -> timedelta:
    """How long a token is valid: ``settings.CKPTWEB_DET_TOKEN_HOURS`` (default 168)."""
    return timedelta(hours=int(getattr(settings, "CKPTWEB_DET_TOKEN_HOURS", 168)))


def det_login(request, username: str, password: str, is_hashed: bool):
    """The active user these credentials belong to, or None; ``request`` is the Django
    HttpRequest (axes reads its address).

    Raises ``Throttled`` (429) when axes has locked this username from this address, before
    any hash is computed, and for the failure that locks it.
    """
    credentials = {"username": username}
    if not AxesProxyHandler.is_allowed(request, credentials):
        raise locked_out(username)
    user = _verify(username, password, is_hashed)
    if user is None:
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            raise locked_out(username)
        return None
    user_logged_in.send(sender=type(user), request=request, user=user)
    return user


def locked_out(username: str) -> Throttled:
    """The 429 of a locked pair (``det user login`` prints "Failed to log_in_user: " and it)."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return Throttled(
        detail=f"too many failed sign-ins as {username!r} from this address: try again in "
        f"{minutes} minutes, or ask an administrator to unlock the account."
    )


def _verify(username: str, password: str, is_hashed: bool):
    """The active user these credentials belong to, or None (no throttling here).

    Pre-hashed passwords verify only against the Determined hasher's hashes: a user whose
    hash predates it signs in on the web once (that upgrades the hash) before ``det`` works.
    """
    user = get_user_model().objects.filter(username=username).first()
    hasher = DeterminedPBKDF2PasswordHasher()
    if user is None or not user.is_active or not user.has_usable_password():
        hasher.encode(password or "x", hasher.salt())  # same cost as a real check
        return None
    if not is_hashed:
        return user if user.check_password(password) else None
    try:
        stored = identify_hasher(user.password)
    except ValueError:
        return None
    if stored.algorithm != hasher.algorithm:
        return None
    return user if hasher.verify_prehashed(password, user.password) else None


def issue_token(user) -> str:
    """A new Bearer token for ``user`` (only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    DetToken.objects.create(
        key_hash=_digest(token),
        user=user,
        expires_at=timezone.now() + token_lifetime(),
        auth_hash=user.get_session_auth_hash(),
    )
    return token


def revoke_token(token_row: DetToken) -> None:
    """Delete this one token (``det user logout``); the user's other tokens stay valid."""
    DetToken.objects.filter(pk=token_row.pk).delete()
    user_id = token_row.user_id
    after = {"kind": "det", "expires_at": token_row.expires_at.isoformat()}
    record(Action.TOKEN_REVOKE, "token", f"det:{token_row.pk}", owner_id=user_id, after=after)


class DetBearerAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` with a DetToken; anything else is a 401."""

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != self.keyword or len(parts) != 2:
            raise AuthenticationFailed("Authorization must be 'Bearer <token>'.")
        token = parts[1].decode("latin-1")
        row = DetToken.objects.select_related("user").filter(key_hash=_digest(token)).first()
        if row is None:
            raise AuthenticationFailed("invalid or expired token; run 'det user login'.")
        if row.expires_at <= timezone.now():
            row.delete()
            raise AuthenticationFailed("invalid or expired token; run 'det user login'.")
        if not row.user.is_active:
            raise AuthenticationFailed("this user is deactivated.")
        if row.auth_hash and not constant_time_compare(
            row.auth_hash, row.user.get_session_auth_hash()
        ):
            row.delete()  # as Django ends the sessions of a changed password
            raise AuthenticationFailed("the password changed; run 'det user login'.")
        return row.user, row

    def authenticate_header(self, request):
        return 'Bearer realm="det-compat"'


__all__ = ["DetBearerAuthentication", "det_login", "det_prehash", "issue_token", "revoke_token"]
