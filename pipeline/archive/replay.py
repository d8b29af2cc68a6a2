"""Captures from a wayback service by raw replay (`<prefix>/<timestamp>id_/<url>`).

Replay hands back the archived response, but through the service's eyes:
pywb renames some archived headers to `X-Archive-Orig-*`, appends its own
(Memento-Datetime, Link, Content-Location), decodes Content-Encoding and
defaults the type of content it could rewrite. This client undoes what it
can so the `Capture` equals the one read from the WARC, and tells the
service's own error pages (no Memento-Datetime) from archived 4xx/5xx.
Each request uses a fresh connection, so the client is thread-safe, and ends
(headers and body) within `timeout` seconds in total (`pipeline.httpdeadline`):
a service that trickles is a `wayback-error` after the retries a timeout gets.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import requests

from pipeline.archive.httpget import get_unfollowed, proxies_for
from pipeline.archive.model import (
    ArchiveError,
    Capture,
    CdxClient,
    CdxRow,
    WaybackContentError,
    WaybackError,
)
from pipeline.archive.rows import sha1_hex_to_b32
from pipeline.httpdeadline import complete, no_answer
from pipeline.httpretry import Retrying

# Headers a replay server adds after the archived ones (one value each).
_SERVER_APPENDED = ("memento-datetime", "link", "content-location")
# Headers that describe the replay connection, not the archived response.
_SERVER_OWN = ("date", "transfer-encoding", "connection", "keep-alive")


class HttpReplayClient:
    """Captures by raw replay, `<replay_prefix>/<timestamp>id_/<url>`, redirects not followed.

    A real replay carries `Memento-Datetime`; an answer without it is the
    service's own error page (damaged record, unresolvable revisit, capture
    redirecting to itself) and becomes WaybackError. The archived headers are
    restored from the service's `X-Archive-Orig-*` renames and its own
    additions are dropped, so the Capture equals the one read from the WARC.
    """

    retry_statuses = (429, 500, 502, 503, 504)

    def __init__(self, replay_prefix: str, cdx: CdxClient, timeout: float = 60.0,
                 retry: Retrying | None = None, verify_digest: bool = True,
                 proxy: str | None = None):
        self.replay_prefix = replay_prefix.rstrip("/")
        self.cdx = cdx
        self.timeout = timeout
        proxies_for(proxy)  # a bad proxy URL fails here, not on the first request
        self.proxy = proxy or None
        self.retry = retry or Retrying()
        self.verify_digest = verify_digest

    def replay_url(self, row: CdxRow) -> str:
        return f"{self.replay_prefix}/{row.datetime}id_/{quote(row.url, safe=_URL_SAFE)}"

    def fetch(self, row: CdxRow, max_bytes: int) -> Capture:
        """The capture of `row`; for a revisit row `revisit_of` is the original found
        in the index by digest (None when the index does not show it).

        Raises WaybackError (service failing, error page) or WaybackContentError
        (payload digest differs from the row).
        """
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        url = self.replay_url(row)
        response = self._get(url, max_bytes)
        if "Memento-Datetime" not in response.headers:
            raise WaybackError(f"replay of {row.url} {row.datetime} failed: HTTP "
                               f"{response.status_code} from the service, not a capture")
        headers = archived_headers(response.raw.headers.items())
        truncated = len(response.content) > max_bytes
        body = b"" if truncated else response.content  # a body above the limit is never used
        revisit_of = self._original(row) if row.is_revisit else None
        restore_content_type(headers, (revisit_of or row).mimetype)
        if self.verify_digest and not truncated:
            self._check_digest(row, revisit_of, headers, body)
        status = response.status_code
        return Capture(
            row=row,
            status_code=status,
            headers=headers,
            body=body,
            location=headers.get("location") if 300 <= status < 400 else None,
            revisit_of=revisit_of,
            body_truncated=truncated,
        )

    def _get(self, url: str, max_bytes: int) -> requests.Response:
        """The answer with at most max_bytes + 1 bytes of its (transfer-decoded) body read:
        one byte more than the limit tells a body above it (`body-too-large`)."""
        return self.retry.send(
            lambda: complete(lambda: get_unfollowed(url, timeout=self.timeout, proxy=self.proxy),
                             f"replay GET {url}", self.timeout, max_bytes + 1, refuse=False),
            self.retry_statuses,
            lambda exc: WaybackError(f"wayback {no_answer(exc)} for {url}: {exc}"),
            transient=self._transient)

    def _transient(self, response: requests.Response) -> bool:
        """A 429/5xx of the service itself (no Memento-Datetime): asked again. A replayed
        capture of an archived 503 carries Memento-Datetime: it is an answer, kept."""
        return (response.status_code in self.retry_statuses
                and "Memento-Datetime" not in response.headers)

    def _original(self, row: CdxRow) -> CdxRow | None:
        """The newest non-revisit capture of the same URL and payload at or before the revisit."""
        try:
            rows = self.cdx.lookup(row.url, limit=10_000)
        except ArchiveError as exc:
            raise WaybackError(f"cannot look up the original of revisit {row.url}: {exc}") from exc
        originals = [r for r in rows if not r.is_revisit and r.sha1b32 == row.sha1b32]
        earlier = [r for r in originals if r.datetime <= row.datetime]
        return (earlier or originals or [None])[0]

    @staticmethod
    def _check_digest(row: CdxRow, revisit_of: CdxRow | None, headers: dict[str, str],
                      body: bytes) -> None:
        """When the replayed body is the stored payload unchanged, its SHA-1 must be the row's."""
        if "content-encoding" in headers or "transfer-encoding" in headers:
            return  # the service decoded the stored bytes; the digest is of the stored form
        expected = (revisit_of or row).sha1b32
        actual = sha1_hex_to_b32(hashlib.sha1(body).hexdigest())
        if actual != expected:
            raise WaybackContentError(
                f"replayed payload of {row.url} {row.datetime} has digest {actual}, "
                f"the index row {expected}")


# Keep reserved and already-escaped characters of the archived URL as they are.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def archived_headers(pairs) -> dict[str, str]:
    """Replay response headers -> the archived response's headers (lower-cased keys).

    `X-Archive-Orig-Foo` becomes `foo`; the last value of each header the
    server appends (Memento-Datetime, Link, Content-Location) and its
    connection headers are dropped. Repeated headers are joined by ", ".
    """
    pairs = [(name.lower(), value) for name, value in pairs]
    appended_at = {}
    for position, (name, _value) in enumerate(pairs):
        if name in _SERVER_APPENDED:
            appended_at[name] = position
    restored: list[tuple[str, str]] = []
    for position, (name, value) in enumerate(pairs):
        if appended_at.get(name) == position or name in _SERVER_OWN:
            continue
        if name.startswith("x-archive-orig-"):
            name = name[len("x-archive-orig-"):]
        elif name.startswith("x-archive-"):
            continue  # the service's own notes (source file, timings)
        restored.append((name, value))
    result: dict[str, str] = {}
    for name, value in restored:
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


# pywb replaces the type of content it could rewrite by its default one (XHTML -> text/html,
# every JavaScript type -> text/javascript), even in raw `id_` replay.
_REPLAY_DEFAULT_TYPES = ("text/html", "text/css", "text/javascript")


def restore_content_type(headers: dict[str, str], archived_mime: str) -> None:
    """Put the archived media type (the index row's) back where the replay defaulted it."""
    content_type = headers.get("content-type")
    if content_type is None or archived_mime in ("", "-", "unk", "warc/revisit"):
        return
    mime = content_type.split(";", 1)[0].strip()
    if mime in _REPLAY_DEFAULT_TYPES and mime != archived_mime:
        headers["content-type"] = content_type.replace(mime, archived_mime, 1)
