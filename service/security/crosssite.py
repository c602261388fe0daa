"""Which requests a page on another site could have made a visitor's browser send.

Such requests must not get the visitor's address blocked (a page elsewhere could then
block its visitors and their NAT neighbours). The rule, chosen so that claiming to be
a browser never lets a guesser off:

- A failure of a request that carries no `Authorization` header and that a browser
  marks as sent from another site (`Sec-Fetch-Site` other than `same-origin`/`none`,
  `Sec-Fetch-Mode: no-cors`, or without those an `Origin` that is neither this service
  nor an allowed CORS origin) does not count toward `PORTCULLIS_BLOCK_AFTER`. Such a
  request guesses no credential, so a client that forges these headers gains nothing.
  A credential-less 404 (a path that is no route) never counts: it guesses nothing.
- A bearer token is never counted as cross-site: a browser sends `Authorization`
  cross-site only after a CORS preflight that only an allowed origin passes.
- Credentials in a form body (the token endpoint: password, refresh token, client
  secret) can be sent cross-site by a plain HTML form. Such a token request is refused
  with 403 before any credential is checked, and that refusal does not count either.
  A client that forges the headers to dodge the counting gets no guess at all.
"""

from __future__ import annotations

from collections.abc import Collection

from werkzeug.datastructures import Headers

_SAME = frozenset({"same-origin", "none"})


def from_another_site(headers: Headers, *, allowed: Collection[str], own: str) -> bool:
    """Whether a browser says this request came from a page of another site (an allowed
    CORS origin is not another site)."""
    origin = headers.get("Origin")
    if origin is not None and origin in allowed:
        return False
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() not in _SAME
    if headers.get("Sec-Fetch-Mode", "").strip().lower() == "no-cors":
        return True
    return origin is not None and origin != own


def failure_counts(headers: Headers, status: int, *, allowed: Collection[str], own: str) -> bool:
    """Whether a 401/403/404 answer counts toward the address's block."""
    if headers.get("Authorization"):
        return True
    if status == 404:
        return False
    return not from_another_site(headers, allowed=allowed, own=own)
