"""Who may use the HTTP server: on a non-loopback --web-bind, only holders of the cluster key.

The token is derived from the key's secret (HMAC-SHA256 of a fixed label), so whoever can
read ``cluster.key`` can compute it and nobody else can; it changes only with the key. A
request presents it as ``Authorization: Bearer <token>``, as ``?token=<token>`` (which also
sets a cookie, so a browser opened on the logged URL can use the dashboard), or as that cookie.
"""
from __future__ import annotations

import hashlib
import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from jetmq.transport.security import Keypair

COOKIE = "jetmq_token"
_LABEL = b"jetmq web token v1"


def token_of(key: Keypair) -> str:
    """The web token of a cluster key."""
    return hmac.new(key.secret, _LABEL, hashlib.sha256).hexdigest()


def presented_token(headers, query: str) -> tuple[str | None, bool]:
    """(the token a request presents, whether it came in the query string) — None: none."""
    authorization = headers.get("Authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    given = parse_qs(query).get("token")
    if given:
        return given[-1], True
    try:
        cookie = SimpleCookie(headers.get("Cookie") or "")
    except CookieError:
        return None, False
    morsel = cookie.get(COOKIE)
    return (morsel.value, False) if morsel is not None else (None, False)


def is_valid(presented: str | None, token: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


def set_cookie_header(token: str) -> str:
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
