"""Is a setting an http(s) service URL, a local path, or a URL the pipeline cannot use?

Why one module: `[backfill] catalog`, `[backfill] archive`, `[grobid] host`
and `[ingest] archive_proxy` each name either a service or a file, and the
test for "is this http(s)?" was written out once per place, case-sensitively:
`HTTPS://api...` then became a SQLite file named after the URL, and so did
`ftp://...`, and the run reported updates to a catalog nobody reads. Here a
scheme is matched as RFC 3986 says (case-insensitively), and anything of the
form `scheme://` (or holding `://` at all) that is not http(s) is recognised as a URL, so the settings
check refuses it instead of taking it for a path.
"""

from __future__ import annotations

import re

HTTP_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def url_scheme(spec: object) -> str | None:
    """The scheme of a `scheme://...` value, lower-cased; None for anything else (a path)."""
    m = _SCHEME.match(spec) if isinstance(spec, str) else None
    return m.group(1).lower() if m else None


def is_http_url(spec: object) -> bool:
    """`http://` or `https://` in any case: a service, not a path."""
    return url_scheme(spec) in HTTP_SCHEMES


def unusable_url_problem(key: str, spec: object) -> str | None:
    """The settings problem of a value that is a URL but not http(s) (None: fine, or a path).

    `key` names the setting as the operator writes it (`[backfill] catalog`).
    """
    if not isinstance(spec, str) or "://" not in spec or is_http_url(spec):
        return None
    scheme = url_scheme(spec)
    kind = f"a {scheme}:// URL" if scheme else "a malformed URL"
    return f"{key} is {kind} ({spec!r}); only an http(s) URL or a local path is accepted"
