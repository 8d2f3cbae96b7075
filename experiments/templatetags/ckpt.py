"""Template helpers of the dashboard: sizes, metrics, state badges, sortable headers."""

from __future__ import annotations

import math

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.timezone import localtime

from ckptweb.lib import units

register = template.Library()

#: Badge colour of each state of experiments, trials, checkpoints and GC runs.
STATE_TONES = {
    "ACTIVE": "blue",
    "RUNNING": "blue",
    "PENDING": "grey",
    "PAUSED": "amber",
    "COMPLETED": "green",
    "SUCCEEDED": "green",
    "CANCELED": "grey",
    "DELETING": "amber",
    "PARTIALLY_DELETED": "amber",
    "DELETED": "grey",
    "ERROR": "red",
    "FAILED": "red",
}


def human_bytes(value) -> str:
    """``1536`` -> ``"1.5 KiB"`` (``ckptweb.lib.units``: the CLI prints the same)."""
    try:
        size = float(value or 0)
    except (TypeError, ValueError):
        return "—"
    return units.human_bytes(size)


@register.filter
def when(value) -> str:
    """``<time>`` reading "3 minutes ago" with the absolute time (UTC) on hover; "—" if unset."""
    if not value:
        return "—"
    absolute = localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), absolute, naturaltime(value)
    )


@register.filter
def steps(value) -> str:
    """A step count with thousands separators (``10,000``), as the chart axis reads it."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


register.filter("human_bytes", human_bytes)


@register.filter
def metric(value) -> str:
    """A validation metric with four significant digits (``0.4000``), "—" when absent."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(number)
    if number != 0 and (abs(number) >= 1e5 or abs(number) < 1e-3):
        return f"{number:.3e}"
    # Four significant digits, trailing zeros kept so a column reads evenly (0.8030, 0.8173).
    return f"{number:#.4g}".rstrip(".")


@register.filter
def state_badge(state) -> str:
    """A coloured pill for a state value, e.g. COMPLETED in green."""
    text = str(state or "")
    tone = STATE_TONES.get(text, "grey")
    label = text.replace("_", " ").capitalize()
    return format_html('<span class="badge badge-{}" data-state="{}">{}</span>', tone, text, label)


@register.filter
def ids_csv(ids) -> str:
    """A list of ids as ``"8,7"``."""
    return ",".join(str(i) for i in ids)


@register.filter
def short_uuid(value) -> str:
    """The first eight characters of a UUID, for dense tables."""
    return str(value)[:8]


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with ``changes`` applied (``None`` removes a key)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + urlencode(sorted(params.lists()), doseq=True) if params else "?"


@register.inclusion_tag("partials/sort_header.html", takes_context=True)
def sort_header(context, label, key, param="sort", numeric=False):
    """A table header that sorts by ``key``; clicking again reverses the order."""
    request = context["request"]
    current = request.GET.get(param) or context.get(f"{param}_default", "")
    if current == key:
        target, direction = f"-{key}", "asc"
    elif current == f"-{key}":
        target, direction = key, "desc"
    else:
        target, direction = (f"-{key}" if numeric else key), ""
    params = request.GET.copy()
    params[param] = target
    params.pop("page", None)
    return {
        "label": label,
        "href": "?" + urlencode(sorted(params.lists()), doseq=True),
        "direction": direction,
        "numeric": numeric,
    }
