"""Security headers that Django does not set by itself."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class FrameAncestorsMiddleware:
    """`frame-ancestors 'none'` on every response that sets no policy of its own: the CSP twin of
    X-Frame-Options DENY, which modern browsers obey first. The HIT page sets MTurk's sites instead."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response
