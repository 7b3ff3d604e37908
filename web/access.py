"""Who may look, and the headers every answer carries.

``web.allow`` lists the client networks (others get 403), like UMTSkeeper's IP whitelist. Behind
nginx the peer is nginx itself, so the client is taken from ``X-Forwarded-For``, but only when the
peer is one of ``web.trusted_proxies``: anybody else could write that header.
"""

import ipaddress
from functools import cache

from flask import Flask, Response, abort, request

from web.db import traffic_config

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def from_trusted_proxy() -> bool:
    """Whether the peer is one of ``web.trusted_proxies`` (nginx on the box)."""
    peer = _address(request.remote_addr or "")
    return peer is not None and any(peer in net for net in
                                    _networks(traffic_config().web.trusted_proxies))


def client_address() -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address: the peer, or what a trusted proxy says the client was."""
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and from_trusted_proxy():
        return _address(forwarded.split(",")[-1])
    return _address(request.remote_addr or "")


def check_client() -> None:
    client = client_address()
    if client is None or not any(client in net for net in
                                 _networks(traffic_config().web.allow)):
        abort(403, description=f"{client or 'this address'} is not in web.allow")


def add_security_headers(response: Response) -> Response:
    """Every answer is nosniff and sends no referrer; pages also get the CSP and no framing
    (on JSON they would only add bytes to every realtime update)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app: Flask) -> None:
    app.before_request(check_client)
    app.after_request(add_security_headers)
