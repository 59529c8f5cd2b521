"""This site's public address as a crowd platform's workers reach it, checked before anything is
published: every platform that sends workers to our pages needs one."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from annotator.crowds.base import CrowdError

LOOPBACK_NAMES = {"localhost"}


def check_external_url(url: str, *, platform: str, local_service: str = "") -> str:
    """https and a host name that resolves. Plain http is accepted only for a loopback host while
    `local_service` names the local stand-in the platform's calls go to (tests, a private rehearsal)."""
    if not url:
        raise CrowdError(
            f"--external-url is required for {platform}: the https address where workers' browsers reach this "
            "site (see the README's sandbox section)."
        )
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http") or parts.query or parts.fragment:
        raise CrowdError(f"--external-url {url!r} is not a site address such as https://annotate.example.org.")
    loopback = host in LOOPBACK_NAMES or _is_loopback_ip(host)
    if parts.scheme != "https" and not (loopback and local_service):
        raise CrowdError(f"--external-url must use https (the platforms send workers to https pages only): {url!r}.")
    try:
        port = parts.port
    except ValueError:
        raise CrowdError(f"--external-url {url!r} has a port out of range (1 to 65535).") from None
    try:
        socket.getaddrinfo(host, port or 443)
    except (OSError, UnicodeError) as error:
        raise CrowdError(
            f"--external-url: the host name {host!r} does not resolve ({error}); workers could not reach the HIT pages."
        ) from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
