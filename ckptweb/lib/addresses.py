"""Whose address a request comes from (sign-in throttling and the audit log)."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with ``CKPTWEB_PROXY_COUNT`` proxies in front,
    the address the outermost of them put in X-Forwarded-For (what a client wrote in the
    header before it is ignored). Anything that is not an IP address falls back to
    REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.CKPTWEB_PROXY_COUNT
    if count:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= count:
            try:
                return str(ipaddress.ip_address(hops[-count]))
            except ValueError:
                pass
    return remote
