"""WARC records read over HTTP by byte range, the way petabox-style WARC stores serve them.

`GET <warc_base>/<warc_path>` with `Range: bytes=offset-(offset+csize-1)`,
then the same parsing and verification as the local collection
(`WarcContentClient`). Useful when the replay service cannot be trusted to
hand back stored bytes, or does not exist: the digest is checked over the
exact payload the index row describes.

Each read (headers and the record streamed to the parser) ends within
`timeout` seconds in total (`pipeline.httpdeadline`): a store that trickles
is a `wayback-error`, never a hang. Only the answer's headers are retried:
a record half parsed cannot be asked for again.
"""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import quote

import requests

from pipeline.archive.httpget import get_unfollowed, proxies_for
from pipeline.archive.model import CdxClient, CdxRow, WaybackContentError, WaybackError
from pipeline.archive.warcclient import WarcContentClient
from pipeline.httpdeadline import Deadline, DeadlineExceeded, no_answer
from pipeline.httpretry import Retrying


class HttpRangeWarcClient(WarcContentClient):
    """Content client reading records by HTTP Range from `warc_base` (no shared connection)."""

    retry_statuses = (429, 500, 502, 503, 504)

    def __init__(self, warc_base: str, cdx: CdxClient, timeout: float = 60.0,
                 retry: Retrying | None = None, proxy: str | None = None):
        super().__init__(cdx)
        self.warc_base = warc_base.rstrip("/")
        self.timeout = timeout
        proxies_for(proxy)  # a bad proxy URL fails here, not on the first request
        self.proxy = proxy or None
        self.retry = retry or Retrying()

    def warc_url(self, warc_path: str) -> str:
        return f"{self.warc_base}/{quote(warc_path.lstrip('/'), safe='/')}"

    @contextmanager
    def open_row(self, row: CdxRow):
        url = self.warc_url(row.warc_path)
        last_byte = row.warc_offset + max(row.warc_csize, 1) - 1
        response, deadline = self._get(url, f"bytes={row.warc_offset}-{last_byte}")
        try:
            with deadline, response:
                status = response.status_code
                if status in (404, 410):
                    raise WaybackError(f"WARC {row.warc_path} not found at {url} ({status})")
                if status == 416:
                    raise WaybackContentError(
                        f"no record at {row.warc_path}@{row.warc_offset}: beyond the end of the file")
                if status == 200 and row.warc_offset != 0:
                    raise WaybackError(f"{url} ignored the Range request (answered 200)")
                if status not in (200, 206):
                    # a 3xx too: the records are this store's, not wherever it points
                    raise WaybackError(f"WARC read of {url} answered HTTP {status}")
                response.raw.decode_content = False  # the stored gzip members are what we parse
                yield deadline.reader(response.raw)
        except DeadlineExceeded as exc:
            # cut while the parser read: whatever it made of the cut, the store was too slow
            raise WaybackError(f"WARC store too slow: {exc}") from exc

    def _get(self, url: str, byte_range: str) -> tuple[requests.Response, Deadline]:
        """The answer's headers (retried) and the deadline of the attempt that got them,
        still running for the body."""
        attempts: list[Deadline] = []

        def attempt() -> requests.Response:
            for earlier in attempts:
                earlier.cancel()  # its answer was closed for a retry
            attempts.append(Deadline(f"WARC range GET {url} ({byte_range})", self.timeout))
            return attempts[-1].send(
                lambda: get_unfollowed(url, headers={"Range": byte_range}, timeout=self.timeout,
                                       proxy=self.proxy))

        response = self.retry.send(
            attempt, self.retry_statuses,
            lambda exc: WaybackError(f"WARC store {no_answer(exc)} for {url}: {exc}"))
        return response, attempts[-1]
