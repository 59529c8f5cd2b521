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


def request_client_address(request: Any) -> str:
    """The same address for django-axes' sign-in throttle."""
    return client_address(request.META)


def page_opens_allowed(client: str) -> bool:
    """A worker opens a HIT page every minute or two; a script making up a crowd's worker ids to fill
    the tables (or to probe) opens hundreds. Past HIT_PAGE_OPENS_PER_MINUTE (30; 0: no limit, for a
    load test from one address) a client waits a minute."""
    budget = settings.HIT_PAGE_OPENS_PER_MINUTE
    return not client or not budget or spend(f"page-opens:{client}", budget, 60)


def too_many(request: Any) -> Any:
    from annotator.views.hit_form import message

    response = message(
        request, "Please wait a minute", "This address has opened many HIT pages in the last minute.", status=429
    )
    response["Retry-After"] = "60"
    return response
