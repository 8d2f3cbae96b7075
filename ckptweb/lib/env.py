"""Tiny typed readers for settings from the environment.

Each one fails loudly with ``ImproperlyConfigured`` naming the variable when a value is
malformed, so a typo stops the process at start-up instead of surfacing later.
"""

import os

from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: bool) -> bool:
    """Read a boolean: ``True``/``true``/``1`` or ``False``/``false``/``0``."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ImproperlyConfigured(f"{name} must be true/false/1/0, not {value!r}")


def envint(name: str, default: int, minimum: int = 0) -> int:
    """Read a non-negative integer (at least ``minimum``)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list; blank items are dropped."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envstr(name: str, default: str = "") -> str:
    """Read a string, stripped of surrounding whitespace."""
    return os.environ.get(name, default).strip()
