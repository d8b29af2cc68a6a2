"""Total deadlines and size caps on every network read (pipeline/httpdeadline.py).

A server that answers one byte every 50 ms never trips a per-read timeout;
each client here must still end with its deadline's error (naming the URL,
the deadline and the bytes received), be retried where timeouts are, and
map to the status docs/statuses.md gives a failing service. The bounds are
generous (a busy machine only trickles slower); a client without a total
deadline fails them by never ending until the server is released.
"""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest
from fakes import FakeArchive, row_for
from services import QuietHandler, serve_http
from trickle import Trickle, ends_within, header_length, http_answer

from pipeline import httpdeadline, httpwatch, preconditions
from pipeline.archive.cdxapi import HttpCdxClient
from pipeline.archive.model import CdxError, WaybackError
from pipeline.archive.rangeread import HttpRangeWarcClient
from pipeline.archive.replay import HttpReplayClient
from pipeline.catalog import fatcat
from pipeline.catalog.base import CatalogError, CatalogUnavailable
from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.httpretry import Retrying
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker
from pipeline.postprocess import grobid
from pipeline.postprocess.grobid import GrobidClient, GrobidUnavailable

DEADLINE = 1.0
BOUND = 30.0  # three attempts of 1 s, with room for a busy machine
FAST = Retrying(retries=2, backoff=0.01)
URL = "http://journal.example/paper.pdf"
BODY = b"%PDF-1.4\n" + b"x" * 20000 + b"\n%%EOF\n"
TOKEN = "test-token-deadlines"
CDX_LINE = json.dumps({"urlkey": "example,journal)/paper.pdf", "timestamp": "20200101000000",
                       "url": URL, "mime": "application/pdf", "status": "200",
                       "digest": "A" * 32, "length": "1000", "offset": "0",
                       "filename": "a.warc.gz"}).encode() + b"\n"
PAD = b" " * 2000  # trickled, 100 s: a client without a deadline outlasts BOUND


def _request():
    return {"base_url": URL, "ext_ids": {"sha1": "0" * 40}, "ingest_type": "pdf",
            "ingest_request_source": "file-backfill", "link_source": "fatcat",
            "link_source_id": "file_x"}


def _status(cdx, content) -> dict:
    return ends_within(lambda: IngestWorker(cdx, content, IngestSettings()).process(_request()),
                       BOUND).value


def _says_deadline(error: BaseException | None, url: str) -> str:
    assert error is not None, "the call ended without an error"
    message = str(error)
    assert url in message and f"within the {DEADLINE:g} s deadline" in message, message
    assert "bytes of body received" in message, message
    return message


def _archive() -> FakeArchive:
    archive = FakeArchive()
    archive.add_row(row_for(URL, BODY, warc_path="a.warc.gz"))
    return archive


# -- the archive's precondition check ----------------------------------------------------------

def test_archive_reachable_fails_within_its_deadline_against_a_trickling_cdx(monkeypatch, caplog):
    monkeypatch.setattr(preconditions, "CHECK_TIMEOUT", DEADLINE)
    settings = SimpleNamespace(cdx_dialect="pywb", warc_base="", archive_proxy="")
    with Trickle(http_answer(body=CDX_LINE + PAD)) as server:
        ended = ends_within(lambda: preconditions.check_archive(
            f"{server.url}/world", settings, "/nonexistent/export.json"), BOUND)
    assert isinstance(ended.error, preconditions.PreconditionFailed), ended.error
    message = _says_deadline(ended.error, f"{server.url}/world/cdx")
    assert "archive CDX lookup failed" in message and "too slow" in message
    assert len(server.requests) == 1  # a check: no retries
    assert any(f"{server.url}/world/cdx" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records), caplog.text


def test_archive_reachable_fails_at_the_first_capture_fetch_too_slow(monkeypatch, tmp_path):
    monkeypatch.setattr(preconditions, "CHECK_TIMEOUT", DEADLINE)
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"ident": "x", "urls": [{"url": URL, "rel": "web"}]}) + "\n")

    class Cdx(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.reply(200, CDX_LINE * 3)  # three captures: a damaged one would not stop the check

    answer = http_answer("206 Partial Content", [("Content-Range", "bytes 0-999/1000")], b"x" * 1000)
    with serve_http(Cdx) as wayback, Trickle(answer, fast=header_length(answer)) as store:
        settings = SimpleNamespace(cdx_dialect="pywb", warc_base=store.url, archive_proxy="")
        ended = ends_within(lambda: preconditions.check_archive(wayback, settings, str(export)),
                            BOUND)
    assert isinstance(ended.error, preconditions.PreconditionFailed), ended.error
    message = _says_deadline(ended.error, f"{store.url}/a.warc.gz")
    assert "capture fetch too slow" in message
    assert len(store.requests) == 1, store.requests


# -- the archive's clients in the shards -------------------------------------------------------

def test_cdx_lookup_trickling_ends_by_its_deadline_is_retried_then_cdx_error():
    with Trickle(http_answer(body=CDX_LINE + PAD)) as server:
        cdx = HttpCdxClient(f"{server.url}/cdx", dialect="pywb", timeout=DEADLINE, retry=FAST)
        ended = ends_within(lambda: cdx.lookup(URL), BOUND)
        assert isinstance(ended.error, CdxError), ended.error
        _says_deadline(ended.error, f"{server.url}/cdx")
        assert len(server.requests) == 3  # a deadline is transient: retried like a timeout
        result = _status(cdx, FakeArchive())
    assert result["status"] == "cdx-error" and "deadline" in result["error_message"]


def test_replay_body_trickling_ends_by_its_deadline_then_wayback_error():
    archive = _archive()
    answer = http_answer(headers=[("Content-Type", "application/pdf"),
                                  ("Memento-Datetime", "Mon, 06 Jan 2020 00:00:00 GMT")], body=BODY)
    with Trickle(answer, fast=header_length(answer)) as server:
        content = HttpReplayClient(server.url, archive, timeout=DEADLINE, retry=FAST)
        ended = ends_within(lambda: content.fetch(archive.lookup(URL)[0], 1 << 20), BOUND)
        assert isinstance(ended.error, WaybackError), ended.error
        _says_deadline(ended.error, server.url)
        assert len(server.requests) == 3
        result = _status(archive, content)
    assert result["status"] == "wayback-error", result


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_warc_range_read_trickling_ends_by_its_deadline_then_wayback_error(phase):
    archive = _archive()
    answer = http_answer("206 Partial Content", [("Content-Range", f"bytes 0-{len(BODY) - 1}/"
                                                                   f"{len(BODY)}")], BODY)
    fast = header_length(answer) if phase == "body" else 0
    with Trickle(answer, fast=fast) as server:
        content = HttpRangeWarcClient(server.url, archive, timeout=DEADLINE, retry=FAST)
        ended = ends_within(lambda: content.fetch(archive.lookup(URL)[0], 1 << 20), BOUND)
        # a cut record is the store's slowness, not a damaged WARC (wayback-content-error)
        assert type(ended.error) is WaybackError, ended.error
        _says_deadline(ended.error, f"{server.url}/a.warc.gz")
        # headers are retried; a record half parsed cannot be asked for again
        assert len(server.requests) == (3 if phase == "headers" else 1), server.requests
        result = _status(archive, content)
    assert result["status"] == "wayback-error", result


# -- GROBID and fatcat ------------------------------------------------------------------------

def test_grobid_trickling_ends_by_its_deadline():
    tei = b"<TEI>" + b" " * 5000 + b"</TEI>"
    with Trickle(http_answer(body=tei)) as server:
        client = GrobidClient(server.url, timeout=DEADLINE, isalive_timeout=DEADLINE)
        answer = ends_within(lambda: client.process_fulltext(BODY), BOUND).value
        alive = ends_within(client.check_alive, BOUND)
    assert answer["status"] == "error-timeout" and answer["status_code"] == -4, answer
    _says_deadline(answer["error_msg"], f"{server.url}/api/processFulltextDocument")
    assert isinstance(alive.error, GrobidUnavailable) and "too slow" in str(alive.error)
    _says_deadline(alive.error, f"{server.url}/api/isalive")


def test_fatcat_trickling_ends_by_its_deadline_retried_and_without_the_token():
    with Trickle(http_answer(body=b'{"editgroup_id": "aaaaaaaaaaaaaaaaaaaaaaaaaa"}' + PAD)) as server:
        catalog = FatcatCatalog(server.url, TOKEN, retries=1, backoff=0.01, timeout=DEADLINE)
        ended = ends_within(lambda: catalog.create_editgroup("test", {}), BOUND)
    assert isinstance(ended.error, CatalogUnavailable), ended.error
    message = _says_deadline(ended.error, "fatcat POST /editgroup")
    assert TOKEN not in message
    assert len(server.requests) == 2


# -- size caps ---------------------------------------------------------------------------------

def _serving(body: bytes):
    class Big(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.reply(200, body, [("Content-Type", "application/json")])

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.do_GET()

    return serve_http(Big)


def _refused_line(caplog, url: str, cap: int) -> None:
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(url in line and f"larger than {cap} bytes, refused" in line for line in lines), lines


def test_cdx_answer_above_the_cap_is_refused_with_a_line(caplog):
    with _serving(CDX_LINE * 100) as base:
        cdx = HttpCdxClient(f"{base}/cdx", dialect="pywb", retry=FAST, max_answer_bytes=1000)
        with pytest.raises(CdxError, match="larger than 1000 bytes, refused"):
            cdx.lookup(URL)
    _refused_line(caplog, f"{base}/cdx", 1000)


def test_grobid_answers_above_the_cap_are_refused_with_a_line(monkeypatch, caplog):
    monkeypatch.setattr(grobid, "MAX_ANSWER_BYTES", 1000)
    with _serving(b"true" + b" " * 100_000) as base:
        client = GrobidClient(base)
        answer = client.process_fulltext(BODY)
        with pytest.raises(GrobidUnavailable, match="larger than 65536 bytes"):
            client.check_alive()
    assert answer["status"] == "error" and "larger than 1000 bytes, refused" in answer["error_msg"]
    _refused_line(caplog, f"{base}/api/processFulltextDocument", 1000)


def test_fatcat_answer_above_the_cap_is_refused_with_a_line(monkeypatch, caplog):
    monkeypatch.setattr(fatcat, "MAX_ANSWER_BYTES", 1000)
    with _serving(json.dumps({"ident": "x" * 5000}).encode()) as base:
        catalog = FatcatCatalog(base, TOKEN, retries=0)
        with pytest.raises(CatalogError, match="larger than 1000 bytes, refused"):
            catalog.lookup_sha1("0" * 40)
    _refused_line(caplog, "fatcat GET /file/lookup", 1000)


def test_a_kept_alive_connection_reused_by_the_next_exchange_is_cut_too():
    ports = []

    class KeepAlive(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            ports.append(self.client_address[1])
            if self.path == "/fast":
                self.reply(200, b"ok")
                return
            self.send_response(200)
            self.send_header("Content-Length", "2000")
            self.end_headers()
            for _ in range(2000):  # 100 s, unless the client hangs up
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)

    with serve_http(KeepAlive) as base:
        session = httpwatch.session()

        def get(path):
            return httpdeadline.complete(
                lambda: session.get(base + path, stream=True,
                                    timeout=httpdeadline.socket_timeouts(DEADLINE)),
                f"GET {base}{path}", DEADLINE, 10_000)

        assert get("/fast").content == b"ok"
        ended = ends_within(lambda: get("/slow"), BOUND)
    assert isinstance(ended.error, httpdeadline.DeadlineExceeded), ended.error
    _says_deadline(ended.error, f"{base}/slow")
    assert len(ports) == 2 and ports[0] == ports[1]  # the same connection, reused
