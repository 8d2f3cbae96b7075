"""The nav bar's checkpoint search: a uuid prefix jumps straight to its checkpoint.

The prefix is normalised to the canonical dashed lower-case form (dashes typed or not), so
``uuid__startswith`` means the same on PostgreSQL (a native uuid cast to dashed text) and
on SQLite (32 hex digits; Django strips the dashes of the prefix). One match redirects to
the checkpoint page; several are listed (at most ``MAX_MATCHES``); input that cannot be a
uuid prefix is answered on the page, never with an error.
"""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from experiments.models import Checkpoint

MAX_MATCHES = 20
MIN_PREFIX = 4
HEX = re.compile(r"[0-9a-f]{1,32}")
DASHES_AT = (8, 12, 16, 20)


def uuid_prefix(text: str) -> str | None:
    """``"1A2B3C4D5E"`` → ``"1a2b3c4d-5e"``; None when ``text`` is no uuid prefix."""
    digits = text.strip().lower().replace("-", "")
    if not HEX.fullmatch(digits):
        return None
    parts, start = [], 0
    for end in (*DASHES_AT, 32):
        if start >= len(digits):
            break
        parts.append(digits[start:end])
        start = end
    prefix = "-".join(parts)
    return prefix + "-" if len(digits) in DASHES_AT else prefix


def find_checkpoints(prefix: str):
    """Checkpoints whose uuid starts with the canonical ``prefix``, newest first."""
    return (
        Checkpoint.objects.filter(uuid__startswith=prefix)
        .select_related("experiment", "trial")
        .order_by("-id")
    )


@login_required
@require_GET
def checkpoint_search(request):
    """``/search/?q=UUID-PREFIX``: redirect to the one match, else list the matches."""
    query = request.GET.get("q", "")[:64]
    prefix = uuid_prefix(query)
    matches, problem = [], None
    if not query.strip():
        problem = "Type the first characters of a checkpoint UUID."
    elif prefix is None:
        problem = "A checkpoint UUID has only hexadecimal digits (0-9, a-f) and dashes."
    elif len(prefix.replace("-", "")) < MIN_PREFIX:
        problem = f"Type at least {MIN_PREFIX} characters of the UUID."
    else:
        matches = list(find_checkpoints(prefix)[: MAX_MATCHES + 1])
        if len(matches) == 1:
            return redirect("experiments:checkpoint", uuid=matches[0].uuid)
    return render(
        request,
        "experiments/search.html",
        {
            "nav_query": query,
            "problem": problem,
            "matches": matches[:MAX_MATCHES],
            "more": len(matches) > MAX_MATCHES,
        },
    )
