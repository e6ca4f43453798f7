"""Which URLs a webhook may be sent to.

A gateway that posts to any URL a merchant names is a server-side request forgery tool:
`http://169.254.169.254/` reaches the cloud metadata service, `http://10.0.0.5/` the
cluster. So a URL must be http(s) and every address its host resolves to must be
globally routable, unless the operator allows private URLs (development, tests). The
check runs when an endpoint is created and again before each delivery, because DNS can
change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from stablegate_common.core.errors import InvalidRequest

MAX_URL_LENGTH = 2048
_RESOLVE_TIMEOUT_SECONDS = 5.0


class UrlRefused(InvalidRequest):
    code = "url_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="url")


def parse_webhook_url(url: str) -> SplitResult:
    """Check the URL's form (scheme, host, length); raise UrlRefused naming the problem."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"url must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise UrlRefused(f"url is not a valid URL: {exc}") from exc
    if parts.scheme not in ("https", "http"):
        raise UrlRefused("url must start with https:// or http://")
    if not parts.hostname:
        raise UrlRefused("url must name a host")
    if port == 0:
        raise UrlRefused("url must not use port 0")
    return parts


async def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """Return the URL if webhooks may be sent to it; raise UrlRefused otherwise."""
    parts = parse_webhook_url(url)
    if not allow_private:
        await _require_public_host(parts)
    return parts.geturl()


async def _require_public_host(parts: SplitResult) -> None:
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for address in await _resolve(host, port):
        if not _is_public(address):
            raise UrlRefused(
                f"url host {host!r} resolves to {address}, a private, loopback or "
                "link-local address; webhooks go to public addresses only"
            )


async def _resolve(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise UrlRefused(f"url host {host!r} does not resolve") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise UrlRefused(f"url host {host!r} does not resolve")
    return addresses


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
