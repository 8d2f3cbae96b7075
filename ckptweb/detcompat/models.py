"""Bearer tokens of Determined clients: one row per ``det user login``, expiring."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DetToken(models.Model):
    """One Determined session token: its SHA-256 (never the token), owner and expiry.

    Created by ``POST det-compat/api/v1/auth/login``; ``auth/logout`` deletes only the row
    of the token it was called with. Expired rows, and rows issued before the user's password
    last changed, are refused and deleted on sight.
    """

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="det_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    #: The user's session auth hash when the token was issued: a password change ends it.
    #: Blank on tokens issued before this field existed (they end at their expiry).
    auth_hash = models.CharField(max_length=128, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name = "Determined token"

    def __str__(self) -> str:
        return f"Determined token {self.pk} of {self.user_id}"
