"""URL rules of an ingest: blocklist and cookie-wall checks, and joining a redirect's Location.

Why: these rules are applied at every hop and on every terminal URL, and the
lists are configuration (docs/statuses.md), so they are plain functions over the lists
they are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit


def matching_pattern(url: str, patterns: Iterable[str]) -> str | None:
    """The first pattern that is a substring of `url`, or None."""
    for p in patterns:
        if p and p in url:
            return p
    return None


def join_location(url: str, location: str | None) -> str | None:
    """Absolute target of a `Location` header sent in answer to `url`; None when unusable.

    Relative, path-absolute and scheme-relative forms are joined against the
    URL that was answered (RFC 9110 §10.2.2). A fragment is dropped (it never
    reaches a server, so it is not part of what gets archived). Anything that
    does not end up as a URL `is_http_url` takes (http(s), a host, no space at
    either end: `0 ;` joins to `http://a/0 `) is unusable.
    """
    if location is None:
        return None
    location = location.strip()
    if not location:
        return None
    try:
        target = urljoin(url, location).split("#", 1)[0]
    except ValueError:  # an unparseable authority, e.g. `http://[::1/`
        return None
    return target if is_http_url(target) else None


def is_http_url(url: object) -> bool:
    if not isinstance(url, str) or not url or url != url.strip():
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # an unparseable authority, e.g. `http://[::1/`
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
