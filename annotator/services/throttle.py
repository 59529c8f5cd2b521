"""How often one client may do a thing: counters per client address on Django's cache (Redis where
CACHE_URL names one, so every server process shares them; this process's memory by default).

The client's address is the connection's, or, behind the proxy `deploy/serve-production` puts in
front (DJANGO_PROXY_CLIENT_HEADER=1), the last address in X-Forwarded-For: the one the proxy saw.
A client can send any X-Forwarded-For of its own, so only the proxy's own hop is believed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache


def client_address(meta: Mapping[str, Any]) -> str:
    if settings.PROXY_CLIENT_HEADER:
        hops = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return str(meta.get("REMOTE_ADDR", ""))


def spend(key: str, budget: int, seconds: int) -> bool:
    """Count one more for `key` in a window of `seconds`; True while the count stays within `budget`."""
    cache.add(key, 0, seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, seconds)
        count = 1
    return count <= budget
