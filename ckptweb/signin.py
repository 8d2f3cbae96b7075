"""Sign-in throttling with django-axes: whose address a sign-in comes from, and what a locked
web sign-in answers.

Axes counts failed sign-ins per (username, IP address) pair in the database (settings.py,
``AXES_*``) and refuses a pair that reached ``AXES_FAILURE_LIMIT`` within ``AXES_COOLOFF_TIME``
before any password is hashed (the address: ``ckptweb.lib.addresses.client_ip``). The web
sign-in and the admin's go through its authentication backend, and axes' middleware calls
``lockout_response`` for them; ``det user login`` asks axes itself and answers its own JSON
429 (``ckptweb/detcompat/auth.py``).
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render


def cool_off_minutes() -> int:
    """How long a locked (username, address) pair stays locked, in whole minutes."""
    return max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_response(request, original_response=None, credentials=None):
    """Axes' answer to a locked-out sign-in (``AXES_LOCKOUT_CALLABLE``): our page, a 429.

    A view that already answered the lockout itself (det login's JSON 429) keeps its answer.
    """
    if original_response is not None and original_response.status_code == 429:
        return original_response
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {"username": username, "minutes": cool_off_minutes()}
    return render(request, "registration/locked_out.html", context, status=429)
