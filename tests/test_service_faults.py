"""Service faults: a CDX service answering 500 or hanging, an archive closing mid-body, and the
catalog API answering 5xx or timing out during an import. Each ends in a result status or a
clear error, never a hang, a traceback or an entity edited twice."""

from __future__ import annotations

import time

import pytest
from catalog_world import entity, file_meta, ident_of, write_lines
from fakes import FakeArchive, row_for
from fatcat_standin import FatcatStandin
from services import QuietHandler, serve_http

from pipeline.archive.cdxapi import HttpCdxClient
from pipeline.archive.model import ArchiveError, CdxError
from pipeline.archive.rangeread import HttpRangeWarcClient
from pipeline.archive.replay import HttpReplayClient
from pipeline.catalog.base import CatalogError
from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.httpretry import Retrying
from pipeline.importer import import_file_meta
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker

FAST = Retrying(retries=2, backoff=0.01)
URL = "http://journal.example/paper.pdf"
BODY = b"%PDF-1.4\n" + b"x" * 20000 + b"\n%%EOF\n"
TOKEN = "test-token-faults"


def _request():
    return {"base_url": URL, "ext_ids": {"sha1": "0" * 40}, "ingest_type": "pdf",
            "ingest_request_source": "file-backfill", "link_source": "fatcat",
            "link_source_id": "file_x"}


def _status(cdx, content) -> dict:
    return IngestWorker(cdx, content, IngestSettings()).process(_request())


# -- the CDX service ---------------------------------------------------------------------

def test_cdx_500_every_time_is_status_cdx_error():
    class Always500(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.reply(500, b"internal error")

    with serve_http(Always500) as base:
        cdx = HttpCdxClient(f"{base}/cdx", dialect="pywb", retry=FAST)
        result = _status(cdx, FakeArchive())
    assert result["status"] == "cdx-error" and "500" in result["error_message"]


def test_cdx_answer_broken_off_mid_body_is_retried_then_cdx_error():
    """A chunked CDX answer that stops in the middle of a chunk (the service died while
    answering) is a transient failure like a reset: asked again, then `cdx-error`, never the
    `error` status of a bug."""
    calls = []

    class BreaksOff(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            calls.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"400\r\n" + b"x" * 10)  # promises 1024 bytes, sends 10
            self.wfile.flush()
            self.close_connection = True

    with serve_http(BreaksOff) as base:
        cdx = HttpCdxClient(f"{base}/cdx", dialect="pywb", retry=FAST)
        with pytest.raises(CdxError, match="broke off"):
            cdx.lookup(URL)
        assert len(calls) == 3  # the first try and FAST's two retries
        result = _status(cdx, FakeArchive())
    assert result["status"] == "cdx-error"


def test_cdx_hanging_is_a_timeout_not_a_hang():
    class Hang(QuietHandler):
        def do_GET(self):  # noqa: N802
            time.sleep(3)
            try:
                self.reply(200, b"")
            except OSError:  # the client gave up long ago
                pass

    with serve_http(Hang) as base:
        cdx = HttpCdxClient(f"{base}/cdx", dialect="pywb", timeout=0.3, retry=FAST)
        t0 = time.monotonic()
        with pytest.raises(CdxError):
            cdx.lookup(URL)
        assert time.monotonic() - t0 < 8  # three tries of 0.3 s; waiting for answers: 9 s
        result = _status(cdx, FakeArchive())
    assert result["status"] == "cdx-error"


# -- the archive closing the connection mid-body ---------------------------------------------

class _CutBody(QuietHandler):
    """Announces the whole body, sends a tenth of it, and closes the connection."""

    def do_GET(self):  # noqa: N802
        status = 206 if self.headers.get("Range") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Memento-Datetime", "Mon, 06 Jan 2020 00:00:00 GMT")
        self.send_header("Content-Length", str(len(BODY)))
        if status == 206:
            self.send_header("Content-Range", f"bytes 0-{len(BODY) - 1}/{len(BODY)}")
        self.end_headers()
        self.wfile.write(BODY[: len(BODY) // 10])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)


@pytest.mark.parametrize("client", ["replay", "range"])
def test_archive_closing_mid_body_is_a_wayback_status(client):
    archive = FakeArchive()
    archive.add_row(row_for(URL, BODY, warc_path="a.warc.gz"))
    with serve_http(_CutBody) as base:
        if client == "replay":
            content = HttpReplayClient(base, archive, timeout=2, retry=FAST)
        else:
            content = HttpRangeWarcClient(base, archive, timeout=2, retry=FAST)
        with pytest.raises(ArchiveError):
            content.fetch(archive.lookup(URL)[0], 1 << 20)
        result = _status(archive, content)
    assert result["status"] in ("wayback-error", "wayback-content-error"), result
    assert result["hit"] is False and "file_meta" not in result


# -- the catalog API during an import ------------------------------------------------------

N = 45


def _world(tmp_path):
    return ([entity(i) for i in range(N)],
            write_lines(tmp_path / "fm.json", [file_meta(i) for i in range(N)]))


def _each_once(api):
    for i in range(N):
        assert len(api.edits_of(ident_of(i))) == 1, i


def test_catalog_5xx_during_an_import_is_retried(tmp_path):
    ents, fm = _world(tmp_path)
    with FatcatStandin(TOKEN, ents) as api:
        api.add_fault("PUT", "update_file", "503", times=3)
        api.add_fault("POST", "accept_editgroup", "503", times=2)
        cat = FatcatCatalog(api.url, TOKEN, retries=4, backoff=0.01)
        result = import_file_meta(fm, cat, journal_path=tmp_path / "j.json", batch_size=10)
        assert result.counts["update"] == N
        _each_once(api)


def test_catalog_down_stops_the_import_clearly_and_a_rerun_finishes_it(tmp_path):
    ents, fm = _world(tmp_path)
    with FatcatStandin(TOKEN, ents) as api:
        flaky = FatcatCatalog(api.url, TOKEN, retries=1, backoff=0.01)
        calls = {"n": 0}
        real = flaky.update_file

        def update_then_outage(*a, **kw):  # the service goes down after 23 edits
            calls["n"] += 1
            if calls["n"] == 24:
                api.add_fault("PUT", "update_file", "503", times=10)
            return real(*a, **kw)

        flaky.update_file = update_then_outage
        with pytest.raises(CatalogError) as err:
            import_file_meta(fm, flaky, journal_path=tmp_path / "j.json", batch_size=10)
        assert "503" in str(err.value) or "gave up" in str(err.value)
        assert TOKEN not in str(err.value)
        api.faults.clear()
        rerun = import_file_meta(fm, FatcatCatalog(api.url, TOKEN, backoff=0.01),
                                 journal_path=tmp_path / "j.json", batch_size=10)
        assert rerun.counts["update"] == N  # the run's totals, earlier attempt included
        _each_once(api)


def test_catalog_timing_out_stops_the_import_clearly_and_a_rerun_finishes_it(tmp_path):
    ents, fm = _world(tmp_path)
    with FatcatStandin(TOKEN, ents) as api:
        slow = FatcatCatalog(api.url, TOKEN, retries=1, backoff=0.01, timeout=0.2)
        api.delay = 0.5  # every answer later than the client waits
        t0 = time.monotonic()
        with pytest.raises(CatalogError) as err:
            import_file_meta(fm, slow, journal_path=tmp_path / "j.json", batch_size=10)
        assert time.monotonic() - t0 < 10
        assert TOKEN not in str(err.value)
        api.delay = 0
        api.wait_idle()  # the calls that timed out on our side finish on the server's
        rerun = import_file_meta(fm, FatcatCatalog(api.url, TOKEN, backoff=0.01),
                                 journal_path=tmp_path / "j.json", batch_size=10)
        assert rerun.counts["update"] == N
        _each_once(api)
