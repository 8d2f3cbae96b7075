"""``ApiToken``: knox's token model (``KNOX_TOKEN_MODEL``) with a name and the last use.

knox stores the first 15 characters of a key (``token_key``, to find candidates) and the
SHA-512 of the whole key (``digest``); the key itself is never stored. Here the digest is a
unique column rather than knox's primary key, so the routes and pages name a token by a plain
``id`` that reveals nothing about its key.
"""

from __future__ import annotations

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS

#: Longest token name.
NAME_LENGTH = 100


class ApiToken(AbstractAuthToken):
    """One API token: ``created``, ``expiry`` (None: never) and ``last_used_at`` (updated at
    most once a minute, ``services.USE_RESOLUTION``)."""

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True, editable=False)
    name = models.CharField(max_length=NAME_LENGTH)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    #: A plain manager: ``services.create_token`` makes the key (knox's manager takes an
    #: expiry as a duration, the Tokens page and ``POST tokens`` give a date).
    objects = models.Manager()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token {self.pk} ({self.name}) of {self.user_id}"
