"""How API requests authenticate with tokens, and ``ckpt login``'s one password request.

``ApiTokenAuthentication`` is knox's ``TokenAuthentication`` (``Authorization: Token <key>``,
the key hashed and compared with the stored digest; expired tokens are refused and deleted)
that also notes the token's last use. ``ThrottledBasicAuthentication`` is DRF's HTTP Basic,
used by ``POST tokens`` only, behind django-axes like every sign-in: a locked (username,
address) pair gets a 429 before any password is hashed.
"""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.utils import timezone
from knox.auth import TokenAuthentication
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed

from ckptweb.accounts import services
from ckptweb.detcompat.auth import locked_out


class ApiTokenAuthentication(TokenAuthentication):
    """knox's token authentication, recording ``last_used_at`` (at most once a minute)."""

    def authenticate_credentials(self, token):
        """knox's check, with a key that is not UTF-8 a 401 (knox would answer a 500)."""
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        """Refuse (and delete) this token when it has expired. knox also reads and deletes
        the user's other expired tokens on every request; the Tokens page shows those."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        services.mark_used(token)
        return user, token


class ThrottledBasicAuthentication(BasicAuthentication):
    """HTTP Basic through django-axes: locked pairs are a 429, failures are counted."""

    def authenticate_credentials(self, userid, password, request=None):
        http_request = getattr(request, "_request", request)
        if not AxesProxyHandler.is_allowed(http_request, {"username": userid}):
            raise locked_out(userid)
        try:
            return super().authenticate_credentials(userid, password, http_request)
        except AuthenticationFailed:
            if getattr(http_request, "axes_locked_out", False):
                raise locked_out(userid) from None
            raise
