"""Where a webhook may go. Outside development a webhook to a private, loopback,
link-local or otherwise non-public address is refused — when it is registered and again
when it is sent (a name may resolve elsewhere by then): the service must not become a
way to reach its own network."""

from __future__ import annotations

import ipaddress
import socket
from typing import ClassVar
from urllib.parse import urlsplit

from deletion_audit.errors import Unprocessable


class DestinationRefused(Unprocessable):
    code: ClassVar[str] = "destination_refused"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, development: bool) -> tuple[str, int]:
    """The URL's host and port if its form is acceptable; raises DestinationRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationRefused(f"a webhook needs an https:// URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise DestinationRefused("a webhook URL must not carry credentials")
    if parts.scheme == "http" and not development:
        raise DestinationRefused("a webhook URL must use https outside development")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused(f"a webhook URL has an invalid port: {url!r}") from None
    host = parts.hostname
    if not development:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if host == "localhost" or host.endswith(".localhost") or (
                literal is not None and not _is_public(str(literal))):
            raise DestinationRefused(f"webhooks to private or loopback addresses are refused "
                                     f"outside development: {host}")
    return host, port


def check_resolved(url: str, *, development: bool) -> None:
    """At send time: every address the host resolves to must be public."""
    host, port = check_url(url, development=development)
    if development:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            raise DestinationRefused(f"{host} resolves to {address}, a private or loopback "
                                     f"address: refused outside development")
