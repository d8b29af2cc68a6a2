"""GROBID: full-text TEI of each ingested PDF, header metadata on the result, TEI to the sink.

Why: the runbook's ingest sent every PDF to GROBID and published the TEI to
`grobid-output-pg`, which fills sandcrawler's grobid table and the search
index. GROBID is a remote Java service that is slow (about a second of a core
per PDF), sometimes busy (503) and sometimes down; none of that may fail an
ingest (docs/statuses.md): each outcome becomes the result's `grobid` sub-result with
sandcrawler's field names (status, status_code, error_msg, grobid_version,
metadata), and every error can be retried later (`GrobidRetry`).

The request is docs/sinks.md's: `POST {host}/api/processFulltextDocument`, the PDF
in multipart field `input`, consolidateHeader=0, consolidateCitations=0,
includeRawCitations=1, includeRawAffiliations=1, 180 s timeout. The header
metadata is parsed from the TEI with `grobid_tei_xml` (by sandcrawler's
author, so the metadata keys are the ones its consumers know).

The timeouts are total deadlines (`pipeline.httpdeadline`): a GROBID that
answers slowly, a byte at a time, still ends in `error-timeout` after 180 s,
and an answer above `MAX_ANSWER_BYTES` is refused (`error`).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import requests

from pipeline.errors import OperatorError
from pipeline.httpdeadline import BodyTooLarge, complete, deadline_in, socket_timeouts
from pipeline.httpwatch import session
from pipeline.locations import is_http_url
from pipeline.sinks.message import GROBID, Message, attach

TIMEOUT = 180.0
ISALIVE_TIMEOUT = 10.0
ERROR_MSG_MAX = 10_000  # as sandcrawler keeps of an error body
MAX_TEI_CHARS = 12_000_000  # a TEI this large is not an article; keeps the message under 30 MB
MAX_ANSWER_BYTES = 4 * MAX_TEI_CHARS  # UTF-8: at most 4 bytes a character
SMALL_ANSWER_BYTES = 64 * 1024  # /api/isalive and /api/version
TIMEOUT_STATUS_CODE = -4  # heritrix's "HTTP timeout", as sandcrawler records a GROBID timeout
CONNECT_STATUS_CODE = -2  # heritrix's "connection failed"
ERROR_STATUSES = frozenset({"error", "error-timeout"})
FORM = {
    "consolidateHeader": "0",
    "consolidateCitations": "0",
    "includeRawCitations": "1",
    "includeRawAffiliations": "1",
}
BIBLIO_KEYS = ("title", "authors", "journal", "date", "doi")


class GrobidUnavailable(OperatorError):
    """GROBID is configured but does not answer its health check."""


class GrobidClient:
    """A GROBID server at `host` (base URL without `/api`). Thread-safe: a session per thread."""

    def __init__(self, host: str, timeout: float = TIMEOUT, isalive_timeout: float = ISALIVE_TIMEOUT):
        if not is_http_url(host):
            raise ValueError(f"GROBID host must be an http(s) URL, got {host!r}")
        self.host = host.rstrip("/")
        self.timeout = timeout
        self.isalive_timeout = isalive_timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        held = getattr(self._local, "session", None)
        if held is None:
            # GROBID is a service of ours: no proxy from the environment
            held = self._local.session = session()
        return held

    def _get(self, path: str) -> requests.Response:
        url = f"{self.host}{path}"
        return complete(lambda: self._session().get(url, timeout=socket_timeouts(self.isalive_timeout),
                                                    stream=True),
                        f"GROBID GET {url}", self.isalive_timeout, SMALL_ANSWER_BYTES)

    def check_alive(self) -> str:
        """Raise `GrobidUnavailable` (saying what to do) unless `/api/isalive` answers true.

        Returns GROBID's version string when `/api/version` answers, else "".
        """
        try:
            resp = self._get("/api/isalive")
        except (requests.RequestException, BodyTooLarge) as e:
            how = "too slow" if deadline_in(e) else "not reachable"
            raise GrobidUnavailable(f"GROBID at {self.host} is {how} ({type(e).__name__}: {e})") from e
        if resp.status_code != 200 or resp.text.strip().lower() != "true":
            raise GrobidUnavailable(
                f"GROBID at {self.host} is not alive: GET /api/isalive answered HTTP {resp.status_code} "
                f"{resp.text[:200]!r}")
        try:
            version = self._get("/api/version")
            return version.text.strip()[:100] if version.status_code == 200 else ""
        except (requests.RequestException, BodyTooLarge):
            return ""

    def process_fulltext(self, body: bytes) -> dict:
        """GROBID's answer for one PDF: status, status_code, and tei_xml or error_msg."""
        url = f"{self.host}/api/processFulltextDocument"
        try:
            resp = complete(
                lambda: self._session().post(
                    url, files={"input": ("document.pdf", body, "application/pdf")}, data=FORM,
                    timeout=socket_timeouts(self.timeout), stream=True),
                f"GROBID POST {url}", self.timeout, MAX_ANSWER_BYTES)
        except requests.Timeout as e:
            return {"status": "error-timeout", "status_code": TIMEOUT_STATUS_CODE,
                    "error_msg": _cut(f"GROBID request timed out: {e}")}
        except BodyTooLarge as e:
            return {"status": "error", "status_code": 200, "error_msg": f"response too large: {e}"}
        except requests.RequestException as e:
            return {"status": "error", "status_code": CONNECT_STATUS_CODE,
                    "error_msg": _cut(f"GROBID request failed: {type(e).__name__}: {e}")}
        if resp.status_code != 200:
            return {"status": "error", "status_code": resp.status_code,
                    "error_msg": _cut(resp.text or f"HTTP {resp.status_code}")}
        tei = resp.content.decode("utf-8", errors="replace")
        if len(tei) > MAX_TEI_CHARS:
            return {"status": "error", "status_code": 200,
                    "error_msg": f"response XML too large: {len(tei)} chars"}
        return {"status": "success", "status_code": 200, "tei_xml": tei}


class BadTei(ValueError):
    """GROBID answered 200 with something that is not a GROBID TEI document."""


def tei_metadata(tei_xml: str) -> tuple[str | None, dict]:
    """(grobid_version, metadata) from a TEI document: header biblio, timestamp, language.

    The metadata is what sandcrawler stores in its grobid table: `biblio`
    (title, authors, journal, date, doi), `grobid_timestamp`,
    `language_code`; no abstract or body text (those are encumbered).
    """
    import grobid_tei_xml  # loaded with the first TEI: a run without GROBID never needs it

    try:
        doc = grobid_tei_xml.parse_document_xml(tei_xml)
    except ET.ParseError as e:
        raise BadTei(f"GROBID answer is not XML: {e}") from e
    except (ValueError, IndexError, KeyError, AttributeError) as e:
        raise BadTei(f"GROBID answer is not a GROBID TEI document (no usable teiHeader): "
                     f"{type(e).__name__}: {e}") from e
    doc.remove_encumbered()
    legacy = doc.to_legacy_dict()
    biblio = {k: legacy[k] for k in BIBLIO_KEYS if legacy.get(k)}
    meta: dict = {"biblio": biblio}
    for k in ("grobid_timestamp", "language_code"):
        if legacy.get(k):
            meta[k] = legacy[k]
    return legacy.get("grobid_version") or None, meta


def grobid_result(answer: dict) -> dict:
    """The result's `grobid` sub-result for GROBID's answer (no TEI in it)."""
    out = {"status": answer["status"], "status_code": answer["status_code"]}
    if answer["status"] != "success":
        out["error_msg"] = answer.get("error_msg") or ""
        return out
    try:
        version, meta = tei_metadata(answer["tei_xml"])
    except BadTei as e:
        return {"status": "error", "status_code": answer["status_code"], "error_msg": _cut(str(e))}
    if version:
        out["grobid_version"] = version
    out["metadata"] = meta
    return out


def grobid_message(answer: dict, sub: dict, file_meta: dict) -> dict:
    """The `grobid-output-pg` message: GROBID's outcome keyed by sha1hex, TEI included on success."""
    msg = {"key": file_meta["sha1hex"], "status": sub["status"], "status_code": sub["status_code"],
           "file_meta": file_meta}
    if sub["status"] == "success":
        msg["tei_xml"] = answer["tei_xml"]
    else:
        msg["error_msg"] = sub.get("error_msg", "")
    return msg


class GrobidPostProcessor:
    """The ingest worker's GROBID step, at most `concurrency` PDFs at GROBID at once.

    The bound keeps GROBID at its own worker-pool size however many ingest
    threads run: more requests than GROBID has workers only queue (or get 503).
    """

    name = "grobid"

    def __init__(self, client: GrobidClient, concurrency: int):
        if concurrency < 1:
            raise ValueError(f"GROBID concurrency must be >= 1, got {concurrency}")
        self.client = client
        self._slots = threading.BoundedSemaphore(concurrency)

    def process(self, body: bytes, result: dict) -> dict:
        with self._slots:
            answer = self.client.process_fulltext(body)
        sub = grobid_result(answer)
        attach(result, Message(GROBID, result["file_meta"]["sha1hex"],
                               grobid_message(answer, sub, result["file_meta"])))
        return sub


def _cut(text: str, limit: int = ERROR_MSG_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
