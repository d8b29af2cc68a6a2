"""SURT keys: the sort key every CDX index (pywb's, the Internet Archive's) is ordered by.

Local lookups binary-search sorted index files, so the key we search for must
be byte-for-byte the key the indexer wrote. Indexers use the `surt` package's
default canonicalisation; this module reproduces that behaviour (checked
against the package in tests) without depending on it at run time: the
package pulls tldextract and six, and we need only the default key.

The steps, in the order the default canonicaliser applies them:
parse (whitespace removed, `http://` assumed, doubled schemes collapsed,
userinfo and fragment dropped), percent-decode and minimally re-encode host,
path and query, normalise dotted paths, numeric hosts to dotted quads,
lower-case, strip `www`/`wwwN.` and default ports, strip session ids, drop a
trailing slash, sort query arguments, then reverse the host with commas and
close it with `)`.
"""

from __future__ import annotations

import re
import socket
import struct
from urllib.parse import SplitResultBytes, quote_from_bytes, unquote_to_bytes

# RFC 3986 appendix B, with the scheme limited to legal scheme characters.
_URL_PARTS = re.compile(
    rb"^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?(?:(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?)?(?:#(.*))?$",
    re.S,
)
_HAS_SCHEME = re.compile(rb"^[a-zA-Z][a-zA-Z0-9+\-.]*:")
_REPEATED_HTTP = re.compile(rb"^(?:https?://)+")
_INNER_SPACE = re.compile(rb"[\n\r\t]")
_WWW_PREFIX = re.compile(rb"www\d*\.")
_DECIMAL_IP = re.compile(rb"^[1-9][0-9]*(?:\.[0-9]+){0,3}$")
_OCTAL_IP = re.compile(rb"^0[0-7]*(?:\.[0-7]+){0,3}$")

# Everything printable except space, '#' and '%' stays as it is.
_SAFE = b"!\"$&'()*+,-./:;<=>?@[\\]^_`{|}~"

_PATH_SESSION_IDS = (
    re.compile(rb"^(.*/)(\((?:[a-z]\([0-9a-z]{24}\))+\)/)([^?]+\.aspx.*)$", re.I | re.S),
    re.compile(rb"^(.*/)(\([0-9a-z]{24}\)/)([^?]+\.aspx.*)$", re.I | re.S),
)
_QUERY_SESSION_IDS = tuple(
    re.compile(rb"^(.*)(?:" + pattern + rb")(?:&(.*))?$", re.I | re.S)
    for pattern in (
        rb"jsessionid=[0-9a-zA-Z]{32}",
        rb"phpsessid=[0-9a-zA-Z]{32}",
        rb"sid=[0-9a-zA-Z]{32}",
        rb"ASPSESSIONID[a-zA-Z]{8}=[a-zA-Z]{24}",
        rb"cfid=[^&]+&cftoken=[^&]+",
    )
)
_DEFAULT_PORTS = {b"http": 80, b"https": 443}


def surt(url: str) -> str:
    """The default SURT key of `url`, e.g. `http://www.Example.com/a?b=1&a=2` -> `example,com)/a?a=2&b=1`.

    Raises ValueError for a URL whose port is not a number in 0..65535 (the
    reference implementation fails the same way) and for a blank URL (where
    the reference crashes).
    """
    raw = url.encode("utf-8")
    if not raw:
        return "-"
    if not raw.strip():
        raise ValueError("a URL of only whitespace has no SURT key")
    if raw.startswith(b"filedesc"):
        return url
    return _surt_bytes(raw).decode("utf-8")


def _surt_bytes(raw: bytes) -> bytes:
    scheme, host, port, path, query = _parse(raw)

    # Percent-encoding normalisation and path clean-up.
    if query:
        query = _escape(_unescape(query))
    if host:
        host = _canonical_host(host)
    path = _unescape(path) if path is not None else None
    if host:
        path = _normalise_path(path)
    path = _escape(path) if path else path

    # Archive-specific rules.
    if host:
        host = host.lower()
        if scheme != b"dns":
            match = _WWW_PREFIX.match(host)
            if match:
                host = host[match.end() :]
    if port is not None and port == _DEFAULT_PORTS.get(scheme.lower(), 0):
        port = None
    if path:
        path = _strip_path_session_id(path.lower())
        if len(path) > 1 and path.endswith(b"/"):
            path = path[:-1]
    if query:
        query = _sort_query(_strip_query_session_id(query).lower())
    query = query or None

    return _key(scheme, host, port, path, query)


def _parse(raw: bytes) -> tuple[bytes, bytes | None, int | None, bytes | None, bytes | None]:
    """Split a URL the lenient way crawlers do: (scheme, host, port, path, query)."""
    raw = _INNER_SPACE.sub(b"", raw.strip())
    if not _HAS_SCHEME.match(raw):
        raw = b"http://" + raw
    # "http://https://host/" was written by broken crawlers: keep the last scheme.
    raw = _REPEATED_HTTP.sub(lambda m: _last_scheme(m.group(0)), raw)
    match = _URL_PARTS.match(raw)
    scheme, netloc, path, query, _fragment = (group or b"" for group in match.groups())
    netloc = netloc.rstrip(b":") if netloc.endswith(b":") else netloc
    parts = SplitResultBytes(scheme, netloc, path, query, b"")
    port = parts.port or None  # ValueError on a non-numeric or out-of-range port
    host = parts.hostname or None
    path_or_none = path or None
    if scheme.startswith(b"http") and host is None and path_or_none is not None:
        # "http:////host/path": the host ended up in the path.
        host, _, rest = path_or_none.lstrip(b"/").partition(b"/")
        path_or_none = b"/" + rest
    return scheme, host, port, path_or_none, query or None


def _last_scheme(prefix: bytes) -> bytes:
    """The last `http://` or `https://` of a run of them."""
    return b"https://" if prefix.endswith(b"https://") else b"http://"


def _canonical_host(host: bytes) -> bytes:
    host = _unescape(host)
    if not host.isascii():
        try:
            host = host.decode("utf-8", "ignore").encode("idna")
        except ValueError:
            pass
    host = host.replace(b"..", b".").strip(b".")
    dotted = _dotted_quad(host)
    return dotted if dotted is not None else _escape(host.lower())


def _dotted_quad(host: bytes) -> bytes | None:
    """Numeric hosts ("3232235777", "0300.0250.1.1", "10.1") as a dotted quad, else None."""
    if host.isdigit():
        return socket.inet_ntoa(struct.pack(">L", int(host) & 0xFFFFFFFF)).encode("ascii")
    if _DECIMAL_IP.match(host) or _OCTAL_IP.match(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host.decode("ascii"))).encode("ascii")
        except OSError:
            return None
    return None


def _normalise_path(path: bytes | None) -> bytes:
    """Resolve `.` and `..` segments and collapse empty ones, keeping a trailing slash."""
    if not path:
        return b"/"
    kept: list[bytes] = []
    for segment in path.split(b"/")[1:]:
        if segment == b".":
            continue
        if segment == b"..":
            if kept:
                kept.pop()
            else:
                kept.append(segment)
            continue
        kept.append(segment)
    if not kept:
        return b"/"
    head = b"".join(segment + b"/" for segment in kept[:-1] if segment)
    return b"/" + head + kept[-1]


def _unescape(value: bytes) -> bytes:
    """Percent-decode until nothing changes ("%2541" -> "A")."""
    while True:
        decoded = unquote_to_bytes(value)
        if decoded == value:
            return value
        value = decoded


def _escape(value: bytes) -> bytes:
    return quote_from_bytes(value, safe=_SAFE).encode("ascii")


def _strip_path_session_id(path: bytes) -> bytes:
    for pattern in _PATH_SESSION_IDS:
        match = pattern.match(path)
        if match:
            path = match.group(1) + match.group(3)
    return path


def _strip_query_session_id(query: bytes) -> bytes:
    for pattern in _QUERY_SESSION_IDS:
        match = pattern.match(query)
        if match:
            query = match.group(1) + (match.group(2) or b"")
    return query


def _sort_query(query: bytes) -> bytes:
    """Sort `a=1&b` arguments by (name, value), keeping `b` and `b=` distinct."""
    if len(query) <= 1:
        return query
    args = sorted(tuple(arg.split(b"=", 1)) for arg in query.split(b"&"))
    return b"&".join(b"=".join(arg) for arg in args)


def _key(scheme: bytes, host: bytes | None, port: int | None, path: bytes | None,
         query: bytes | None) -> bytes:
    if not host:
        key = scheme + b":"
    else:
        key = b",".join(reversed(host.split(b".")))
        if port is not None:
            key += b":%d" % port
        key += b")"
    if path:
        key += path
    elif query is not None:
        key += b"/"
    if query is not None:
        key += b"?" + query
    return key
