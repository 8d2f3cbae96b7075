"""Trial logs: append the lines a training process shipped, keeping each trial's bounded.

``append_trial_logs`` is the one writer of ``TrialLog``. Logs are not data a user asked to
keep: a line over ``MAX_LINE_CHARS`` is cut (marked with ``…``), text PostgreSQL cannot
store (NUL, lone surrogates) is replaced, and past ``MAX_TRIAL_LINES`` a trial's oldest
lines are dropped, so no client can grow the table without bound. A request holds at
most ``MAX_LINES`` lines (an InvalidInput naming ``logs`` otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from ckptweb.lib.limits import InvalidInput
from experiments.models import Trial, TrialLog

#: Most lines one request appends (Determined's shipper sends batches of about 1,000).
MAX_LINES = 5000
#: Longest line kept, in characters; longer lines are cut.
MAX_LINE_CHARS = 8192
#: Lines kept per trial: the latest ones.
MAX_TRIAL_LINES = 10_000


def clean_line(text: str) -> str:
    """``text`` storable anywhere: NUL and lone surrogates replaced, at most MAX_LINE_CHARS."""
    text = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if len(text) > MAX_LINE_CHARS:
        text = text[: MAX_LINE_CHARS - 1] + "…"
    return text


@transaction.atomic
def append_trial_logs(trial: Trial, lines: Sequence[tuple[str, datetime | None]]) -> int:
    """Append ``lines`` (text, when it was logged) to ``trial``'s log; the number kept."""
    if len(lines) > MAX_LINES:
        raise InvalidInput("logs", f"at most {MAX_LINES:,} log lines per request.")
    TrialLog.objects.bulk_create(
        [TrialLog(trial=trial, line=clean_line(text), logged_at=at) for text, at in lines]
    )
    newest = TrialLog.objects.filter(trial=trial).order_by("-id").values_list("id", flat=True)
    for cutoff in newest[MAX_TRIAL_LINES : MAX_TRIAL_LINES + 1]:  # the newest line too old
        TrialLog.objects.filter(trial=trial, id__lte=cutoff).delete()
    return len(lines)
