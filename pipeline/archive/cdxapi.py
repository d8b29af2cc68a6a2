"""A wayback service's CDX API: exact-URL lookups in either JSON dialect.

Two dialects exist (SERVICES.md): the Internet Archive answers `output=json`
with an array of arrays whose first row names the fields, and takes
`limit=-25` for "the newest 25"; pywb answers with one JSON object per line
and needs `sort=reverse&limit=25` (its `limit=-25` returns nothing). The
client learns the dialect once, from the shape of its first answer, unless
it is configured. Rows come back exactly as the local collection client
gives them for the same archive.

Each request (headers and body) ends within `timeout` seconds in total, and
an answer above `max_answer_bytes` is refused (`pipeline.httpdeadline`): a
service that trickles or floods is a `cdx-error`, after the retries a
timeout gets.

No connection is kept between requests: fresh connections were measured
faster than keep-alive against pywb, and it makes the client safe to use
from several threads.
"""

from __future__ import annotations

import json
import threading

from pipeline.archive.httpget import get_unfollowed, proxies_for
from pipeline.archive.model import CdxError, CdxRow
from pipeline.archive.rows import lookup_key, matches_url, newest_first, row_from_api_fields
from pipeline.httpdeadline import BodyTooLarge, complete, no_answer
from pipeline.httpretry import Retrying

DIALECTS = ("auto", "ia", "pywb")
# Answers worth asking again: the service failing (5xx and above) or pushed too hard (429).
_SERVER_ERRORS = frozenset((429, *range(500, 1000)))
# 10,000 rows (a revisit's resolution asks for that many) are about 3 MB.
MAX_ANSWER_BYTES = 32 * 1024 * 1024


class HttpCdxClient:
    """Exact-URL lookups against `<cdx_url>?url=...&matchType=exact&output=json&allowFuzzy=0`."""

    def __init__(self, cdx_url: str, dialect: str = "auto", timeout: float = 30.0,
                 retry: Retrying | None = None, proxy: str | None = None,
                 max_answer_bytes: int = MAX_ANSWER_BYTES):
        if dialect not in DIALECTS:
            raise ValueError(f"cdx dialect must be one of {DIALECTS}, not {dialect!r}")
        self.cdx_url = cdx_url
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        proxies_for(proxy)  # a bad proxy URL fails here, not on the first request
        self.proxy = proxy or None
        self.retry = retry or Retrying()
        self._dialect = None if dialect == "auto" else dialect
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """`ia` or `pywb`; asks the service once when configured as `auto`."""
        return self._dialect_for("http://example.com/")

    def _dialect_for(self, url: str) -> str:
        if self._dialect is None:
            with self._lock:
                if self._dialect is None:
                    self._dialect = self._detect(url)
        return self._dialect

    def lookup(self, url: str, limit: int = 25) -> list[CdxRow]:
        """The newest `limit` rows for exactly `url`, newest first; [] when none.

        Raises CdxError: service unreachable or failing (after retries on 5xx),
        non-200 answer, or a row that does not parse.
        """
        key = lookup_key(url, limit)
        params = self._params(url)
        if self._dialect_for(url) == "ia":
            params["limit"] = str(-limit)
        else:
            params.update(sort="reverse", limit=str(limit))
        rows = parse_cdx_json(self._get(params))
        return newest_first([row for row in rows if matches_url(row, key, url)], limit)

    def _detect(self, url: str) -> str:
        """IA answers `output=json` with an array (`[]` when empty), pywb with JSON lines."""
        params = self._params(url)
        params["limit"] = "1"
        return "ia" if self._get(params).lstrip().startswith("[") else "pywb"

    @staticmethod
    def _params(url: str) -> dict[str, str]:
        return {"url": url, "matchType": "exact", "output": "json", "allowFuzzy": "0"}

    def _get(self, params: dict[str, str]) -> str:
        what = f"CDX lookup GET {self.cdx_url}?url={params['url']}"
        try:
            response = self.retry.send(
                lambda: complete(lambda: get_unfollowed(self.cdx_url, params=params,
                                                        timeout=self.timeout, proxy=self.proxy),
                                 what, self.timeout, self.max_answer_bytes),
                _SERVER_ERRORS,
                lambda exc: CdxError(f"CDX service {no_answer(exc)} at {self.cdx_url}: {exc}"))
        except BodyTooLarge as exc:
            raise CdxError(str(exc)) from exc
        if response.status_code != 200:
            # a 3xx too: the index is this service's, not wherever it points
            raise CdxError(f"CDX service answered {response.status_code} for {params['url']}"
                           f": {response.text[:200]!r}")
        return response.text


def parse_cdx_json(text: str) -> list[CdxRow]:
    """Rows of an `output=json` answer in either dialect; CdxError when malformed."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        return _parse_ia(stripped)
    rows = []
    for line in stripped.splitlines():
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except ValueError as exc:
            raise CdxError(f"bad CDX JSON line {line[:200]!r}: {exc}") from exc
        if not isinstance(fields, dict):
            raise CdxError(f"CDX JSON line is not an object: {line[:200]!r}")
        rows.append(row_from_api_fields(fields))
    return rows


def _parse_ia(text: str) -> list[CdxRow]:
    try:
        table = json.loads(text)
    except ValueError as exc:
        raise CdxError(f"bad CDX JSON answer: {exc}") from exc
    if not isinstance(table, list) or not all(isinstance(row, list) for row in table):
        raise CdxError("CDX JSON answer is not an array of arrays")
    if not table:
        return []
    header, *body = table
    rows = []
    for values in body:
        if len(values) != len(header):
            raise CdxError(f"CDX row has {len(values)} fields, the header {len(header)}: {values!r}")
        rows.append(row_from_api_fields(dict(zip(header, values, strict=True))))
    return rows
