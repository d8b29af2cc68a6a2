"""The ingest worker: one request in, one docs/data.md result out, never an exception.

Why: this is the heart of the backfill. For a request's `base_url` it looks
the URL up in the archive index, fetches the best capture, follows archived
redirects, follows landing pages to their PDF link (hop by hop), and computes
the full file metadata of what it ends on. Every way this can fail has a
status of docs/statuses.md, so a shard of hundreds of thousands of requests runs to
its end and its histogram tells operators what happened.

The one status outside docs/statuses.md is `error`: a bug (an exception no rule
expected). It carries the exception's type and message in `error_message` so
it can be found and fixed; the shard goes on with the next request. The one
exception that escapes is `StepFailed` (e.g. `ArchiveUnreadable`: the local
archive's files cannot be read): no answer about this request, the
environment failed, and the shard must stop rather than record it.

Clients are injected (`CdxClient`, `ContentClient` of `pipeline.archive.model`)
and so are the settings; GROBID and text extraction plug in later as
`PostProcessor`s run on successful PDFs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from pipeline.archive.model import ArchiveError, Capture, CdxClient, ContentClient
from pipeline.checks import StepFailed
from pipeline.ingest.capture import best_capture
from pipeline.ingest.filemeta import BadGzipEncoding, GzipTooLarge, file_meta, undo_transfer_gzip
from pipeline.ingest.pdflink import extract_pdf_link
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.urls import is_http_url, join_location, matching_pattern

log = logging.getLogger(__name__)

ERROR_MESSAGE_MAX = 1600
BUG_STATUS = "error"
LANDING_MIMETYPES = frozenset({"text/html", "application/xhtml+xml", "application/xml", "text/xml"})


class PostProcessor(Protocol):
    """Something run on each successful PDF (GROBID, text extraction): a later seam.

    `process` returns the sub-result stored under `result[name]`; it must
    record its own failures there (a GROBID failure never fails the ingest).
    """

    name: str

    def process(self, body: bytes, result: dict) -> dict: ...


class IngestFailure(Exception):
    """Ends one request's ingest with a docs/statuses.md status."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def truncate(message: str, limit: int = ERROR_MESSAGE_MAX) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def request_problem(request: object) -> str | None:
    """Why a request cannot be ingested by this worker, or None when it can."""
    if not isinstance(request, dict):
        return "not-an-object"
    if request.get("ingest_type") != "pdf":
        return "wrong-ingest-type"
    if not is_http_url(request.get("base_url")):
        return "bad-base-url"
    return None


class IngestWorker:
    """Ingest PDF requests from a web archive. Thread-safe: `process` keeps no state."""

    def __init__(
        self,
        cdx: CdxClient,
        content: ContentClient,
        settings: IngestSettings,
        postprocessors: Sequence[PostProcessor] = (),
    ):
        self.cdx = cdx
        self.content = content
        self.settings = settings
        self.postprocessors = tuple(postprocessors)

    def want(self, request: dict) -> bool:
        """Whether `process` applies: a dict with ingest_type pdf and an http(s) base_url."""
        return request_problem(request) is None

    def process(self, request: dict) -> dict:
        """The ingest result of one request (docs/data.md); `hit` is true only for success.

        Raises StepFailed only: the environment failed and the shard must stop."""
        result: dict = {"request": request, "hit": False}
        try:
            self._ingest(request, result)
        except StepFailed:
            raise
        except IngestFailure as f:
            self._fail(result, f.status, f.message)
        except ArchiveError as e:
            self._fail(result, e.status, f"{type(e).__name__}: {e}")
        except Exception as e:  # a bug: record it, keep the shard going
            log.exception("ingest bug on %r", request.get("base_url") if isinstance(request, dict) else request)
            self._fail(result, BUG_STATUS, f"{type(e).__name__}: {e}")
        result["hit"] = result["status"] == "success"
        return result

    @staticmethod
    def _fail(result: dict, status: str, message: str) -> None:
        result["status"] = status
        result["error_message"] = truncate(message)
        if status != "wrong-mimetype":
            result.pop("file_meta", None)

    # -- the ingest ---------------------------------------------------------
    def _ingest(self, request: dict, result: dict) -> None:
        problem = request_problem(request)
        if problem:
            raise IngestFailure(BUG_STATUS, f"request not ingestable here: {problem}")
        url = request["base_url"]
        hops = [url]
        result["hops"] = hops
        seen = {url}
        hop_count = 1
        while True:
            self._check_url(url)
            capture, terminal_url = self._follow_redirects(url, seen, result)
            if terminal_url != url:
                hops.append(terminal_url)
                self._check_url(terminal_url)
            body, meta = self._body(capture, result)
            mimetype = meta["mimetype"]
            if mimetype in LANDING_MIMETYPES:
                url = self._next_hop(terminal_url, body, hops, hop_count, result)
                hops.append(url)
                seen.add(url)
                hop_count += 1
                continue
            result["file_meta"] = meta
            if mimetype != self.settings.wanted_mimetype:
                raise IngestFailure(
                    "wrong-mimetype",
                    f"terminal body is {mimetype}, not {self.settings.wanted_mimetype}: {terminal_url}",
                )
            result["status"] = "success"
            self._postprocess(body, result)
            return

    def _check_url(self, url: str) -> None:
        blocked = matching_pattern(url, self.settings.blocklist)
        if blocked:
            raise IngestFailure("skip-url-blocklist", f"URL matches blocklist entry {blocked!r}: {url}")
        cookie = matching_pattern(url, self.settings.cookie_patterns)
        if cookie:
            raise IngestFailure("blocked-cookie", f"cookie wall ({cookie!r}) in URL: {url}")

    def _follow_redirects(self, url: str, seen: set[str], result: dict) -> tuple[Capture, str]:
        """Look `url` up and fetch its best capture, following archived 3xx captures.

        Returns the 2xx capture and the URL it was looked up under. Redirects
        stay inside the hop; each fetched capture becomes the result's
        `cdx`/`terminal` so a failure shows where it happened.
        """
        redirects = 0
        current = url
        while True:
            rows = self.cdx.lookup(current, self.settings.cdx_limit)
            if not rows:
                raise IngestFailure("no-capture", f"no capture in the archive index for {current}")
            row = best_capture(rows, self.settings.wanted_mimetype)
            capture = self.content.fetch(row, self.settings.max_body_bytes)
            self._record_capture(capture, result)
            code = capture.status_code
            if 300 <= code < 400:
                target = join_location(row.url, capture.location)
                if target is None:
                    raise IngestFailure(
                        "bad-redirect",
                        f"HTTP {code} capture of {row.url} ({row.datetime}) has no usable Location: "
                        f"{capture.location!r}",
                    )
                if target in seen:
                    raise IngestFailure("redirect-loop", f"{row.url} redirects to already seen {target}")
                redirects += 1
                if redirects > self.settings.max_redirects:
                    raise IngestFailure(
                        "redirects-exceeded",
                        f"more than {self.settings.max_redirects} redirects starting at {url}",
                    )
                seen.add(target)
                current = target
                continue
            if not 200 <= code < 300:
                raise IngestFailure(
                    "terminal-bad-status", f"HTTP {code} capture of {row.url} ({row.datetime})"
                )
            return capture, current

    @staticmethod
    def _record_capture(capture: Capture, result: dict) -> None:
        row = capture.row
        # A replay service may resolve a revisit without saying which row it used
        # (`revisit_of` None); a revisit resolved to another revisit is never valid.
        if capture.revisit_of is not None and capture.revisit_of.is_revisit:
            raise IngestFailure(
                "wayback-content-error",
                f"revisit record of {row.url} ({row.datetime}) resolved to another revisit",
            )
        result["cdx"] = row.to_dict()
        if capture.revisit_of is not None:
            result["revisit_cdx"] = capture.revisit_of.to_dict()
        else:
            result.pop("revisit_cdx", None)
        result["terminal"] = {
            "terminal_url": row.url,
            "terminal_dt": row.datetime,
            "terminal_status_code": capture.status_code,
        }

    def _body(self, capture: Capture, result: dict) -> tuple[bytes, dict]:
        """The terminal body (transfer gzip undone) and its file_meta, or a body status."""
        where = f"{capture.row.url} ({capture.row.datetime})"
        limit = self.settings.max_body_bytes
        if capture.body_truncated or len(capture.body) > limit:
            raise IngestFailure("body-too-large", f"body of {where} is larger than {limit} bytes")
        if not capture.body:
            raise IngestFailure("null-body", f"empty body: {where}")
        try:
            body = undo_transfer_gzip(capture.body, capture.mimetype or capture.row.mimetype, limit)
        except BadGzipEncoding as e:
            raise IngestFailure("bad-gzip-encoding", f"{e}: {where}") from e
        except GzipTooLarge as e:
            raise IngestFailure("body-too-large", f"{e}: {where}") from e
        if not body:
            raise IngestFailure("null-body", f"empty body after gzip decoding: {where}")
        # The reader's SHA-1 is of capture.body; it holds only while no gzip was undone.
        meta = file_meta(body, capture.body_sha1hex if body is capture.body else None)
        result["terminal"]["terminal_sha1hex"] = meta["sha1hex"]
        return body, meta

    def _next_hop(self, page_url: str, body: bytes, hops: list[str], hop_count: int,
                  result: dict) -> str:
        found = extract_pdf_link(page_url, body)
        if found is None:
            raise IngestFailure("no-pdf-link", f"no PDF link found on landing page {page_url}")
        result["extract_next_hop"] = found
        next_url = found["next_url"]
        if next_url in hops:
            raise IngestFailure(
                "link-loop", f"PDF link of {page_url} ({found['technique']}) already visited: {next_url}"
            )
        if hop_count >= self.settings.max_hops:
            raise IngestFailure(
                "max-hops-exceeded", f"more than {self.settings.max_hops} hops; next would be {next_url}"
            )
        return next_url

    def _postprocess(self, body: bytes, result: dict) -> None:
        for pp in self.postprocessors:
            try:
                result[pp.name] = pp.process(body, result)
            except Exception as e:  # a sink bug must not fail a successful ingest
                log.exception("post-processor %s failed", pp.name)
                result[pp.name] = {"status": "error", "error_msg": truncate(f"{type(e).__name__}: {e}")}
        result.setdefault("grobid", {"status": "disabled"})
