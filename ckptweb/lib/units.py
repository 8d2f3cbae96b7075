"""Binary sizes as people read them, one spelling everywhere (pages, CLI, messages).

Sizes are powers of 1024, so they are written KiB, MiB, GiB, … (IEC units): the dashboard
and the ``ckpt`` CLI print the same text for the same number.
"""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(size: int | float, exact: bool = False) -> str:
    """``1536`` → ``"1.5 KiB"``; whole bytes below 1 KiB, one decimal above.

    ``exact``: for a limit in a message, which must not be rounded: a whole number of the
    largest unit that divides ``size`` (``1048576`` → ``"1 MiB"``, ``1536`` → ``"1536 B"``).
    """
    value = float(size)
    unit = 0
    while value >= 1024 and unit < len(UNITS) - 1 and not (exact and value % 1024):
        value /= 1024
        unit += 1
    if unit == 0 or exact:
        return f"{int(value)} {UNITS[unit]}"
    return f"{value:.1f} {UNITS[unit]}"
