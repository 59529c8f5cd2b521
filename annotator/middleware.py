"""Security headers that Django does not set by itself."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)


class FrameAncestorsMiddleware:
    """`frame-ancestors 'none'` on every response that sets no policy of its own: the CSP twin of
    X-Frame-Options DENY, which modern browsers obey first. The HIT page a crowd frames sets its own policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response


class DatabaseUnavailableMiddleware:
    """A database that is restarting or unreachable gets a clear 503 page (Retry-After) instead of a
    bare server error. Nothing was stored by the failed request (its transaction rolled back), and
    Django drops the broken connection when the request ends, so submitting again stores the answer,
    once."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.db import InterfaceError, OperationalError
        from django.shortcuts import render

        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        text = "Our database is briefly unavailable (it may be restarting), so nothing was saved. " + (
            "Go back and submit again in a few seconds: your answers are still in the form."
            if request.method == "POST"
            else "Reload this page in a few seconds."
        )
        response = render(
            request, "annotator/message.html", {"title": "Please try again in a moment", "text": text}, status=503
        )
        response["Retry-After"] = "5"
        return response
