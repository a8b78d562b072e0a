"""Who may read /metrics: a scraper with the bearer token, or one from an allowed network.

The figures say how many students are on the site and which hosts are down: not for the
public, and not behind a login (a scraper has no session). With neither setting configured
the endpoint answers nobody rather than everybody."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[list[Network], list[str]]:
    """The allowed networks (a bare address is a network of one) and the entries that are
    neither, so the system check can name them."""
    networks: list[Network] = []
    invalid: list[str] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            invalid.append(entry)
    return networks, invalid


def configured() -> bool:
    """Whether any way in is set up at all (otherwise the 403 says how to set one up)."""
    return bool(settings.LABSITE_METRICS_TOKEN) or bool(
        parse_networks(settings.LABSITE_METRICS_ALLOW)[0]
    )


def token_matches(request: HttpRequest) -> bool:
    """``Authorization: Bearer <token>`` equal to LABSITE_METRICS_TOKEN, compared in
    constant time so the token cannot be guessed byte by byte from response times."""
    token = settings.LABSITE_METRICS_TOKEN
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


#: Headers a reverse proxy adds: behind one, REMOTE_ADDR is the proxy's own address (the
#: same for every client on the internet), so it proves nothing about who is asking.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def address_allowed(request: HttpRequest) -> bool:
    """REMOTE_ADDR inside one of LABSITE_METRICS_ALLOW's networks, for a request that did
    not come through a reverse proxy (through one, only the token lets a scraper in). An
    IPv4 client of a dual-stack listener arrives as ``::ffff:a.b.c.d``, matched as a.b.c.d."""
    networks = parse_networks(settings.LABSITE_METRICS_ALLOW)[0]  # invalid ones: checks.py
    if not networks or any(h in request.headers for h in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").strip())
    except ValueError:
        return False
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        candidates.append(address.ipv4_mapped)
    return any(a in net for a in candidates for net in networks if a.version == net.version)


def allowed(request: HttpRequest) -> bool:
    """Either way in suffices."""
    return token_matches(request) or address_allowed(request)
