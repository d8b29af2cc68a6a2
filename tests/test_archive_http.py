"""HTTP clients against loopback servers: the IA CDX dialect, retries, range reads, replay rules."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from archive_collections import CollectionBuilder
from services import QuietHandler, free_port, serve_http, serve_ranges

from pipeline.archive import open_archive
from pipeline.archive.cdxapi import HttpCdxClient, parse_cdx_json
from pipeline.archive.factory import wayback_endpoints
from pipeline.archive.local import open_local
from pipeline.archive.model import CdxError, WaybackContentError, WaybackError
from pipeline.archive.rangeread import HttpRangeWarcClient
from pipeline.archive.replay import HttpReplayClient, archived_headers, restore_content_type
from pipeline.archive.rows import sha1_hex_to_b32
from pipeline.httpretry import Retrying

FAST = Retrying(retries=2, backoff=0.01)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
IA_HEADER = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "redirect",
             "robotflags", "length", "offset", "filename"]


@pytest.fixture()
def collection(tmp_path):
    b = CollectionBuilder(tmp_path / "coll")
    for year in range(1990, 2020):  # 30 captures: more than the newest 25
        b.response("http://example.com/many.pdf", f"{year}0101000000", PDF + str(year).encode())
    b.response("http://example.com/paper.pdf", "20200101000000", PDF)
    b.response("http://example.com/moved", "20200102000000", b"",
               status="301 Moved", headers=[("Location", "https://example.com/paper.pdf")])
    b.response("http://example.com/landing", "20200103000000", b"<html>hi</html>" * 50,
               headers=[("Content-Type", "text/html")], gzip_encode=True)
    b.revisit("http://example.com/paper.pdf", "20210101000000",
              refers_to=("http://example.com/paper.pdf", "20200101000000"))
    b.revisit("http://example.com/paper.pdf", "20220101000000",
              refers_to=("http://example.com/paper.pdf", "20210101000000"))
    b.finish()
    return b.root


def _ia_handler(entries, seen, failures=None):
    """A stand-in for the Internet Archive's CDX API (array of arrays, limit=-N = newest N)."""

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802
            params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            seen.append(params)
            if failures and failures[0] > 0:
                failures[0] -= 1
                self._send(503, b"slow down")
                return
            url = params.get("url", "")
            rows = [[e.urlkey, e.timestamp, e.url, e.mime, e.status or "-", e.digest, "-", "-",
                     str(e.length), str(e.offset), e.filename]
                    for e in sorted(entries, key=lambda e: e.timestamp) if e.url == url]
            limit = int(params.get("limit", "0") or 0)
            rows = rows[limit:] if limit < 0 else rows[:limit] if limit > 0 else rows
            self._send(200, json.dumps([IA_HEADER] + rows if rows else []).encode())

        def _send(self, status, body):
            self.reply(status, body, [("Content-Type", "application/json")])

    return Handler


def _entries(collection):
    b = CollectionBuilder(collection)
    return b.entries()


def test_ia_dialect_is_detected_and_asks_for_the_newest(collection):
    seen = []
    with serve_http(_ia_handler(_entries(collection), seen)) as base:
        cdx = HttpCdxClient(f"{base}/cdx", retry=FAST)
        rows = cdx.lookup("http://example.com/many.pdf", limit=25)
        assert cdx.dialect == "ia"
        assert [r.datetime[:4] for r in rows] == [str(y) for y in range(2019, 1994, -1)]
        cdx.lookup("http://example.com/paper.pdf")
    assert len(seen) == 3  # one detection probe, then one request per lookup
    assert seen[1]["limit"] == "-25" and "sort" not in seen[1]
    assert seen[1]["matchType"] == "exact" and seen[1]["allowFuzzy"] == "0"
    assert seen[1]["output"] == "json"


def test_ia_rows_equal_local_rows(collection):
    local_cdx, _ = open_local(str(collection))
    with serve_http(_ia_handler(_entries(collection), [])) as base:
        cdx = HttpCdxClient(f"{base}/cdx", dialect="ia", retry=FAST)
        for url in ["http://example.com/paper.pdf", "http://example.com/moved",
                    "http://example.com/landing", "http://example.com/nothing"]:
            assert cdx.lookup(url) == local_cdx.lookup(url)
        revisit = cdx.lookup("http://example.com/paper.pdf")[0]
        assert revisit.is_revisit and revisit.status_code is None


def test_configured_dialect_skips_detection(collection):
    seen = []
    with serve_http(_ia_handler(_entries(collection), seen)) as base:
        HttpCdxClient(f"{base}/cdx", dialect="pywb", retry=FAST).lookup("http://example.com/x")
    assert len(seen) == 1 and seen[0]["sort"] == "reverse" and seen[0]["limit"] == "25"
    with pytest.raises(ValueError):
        HttpCdxClient("http://127.0.0.1:1/cdx", dialect="wayback")


def test_5xx_is_retried_then_succeeds(collection):
    seen, failures = [], [2]
    with serve_http(_ia_handler(_entries(collection), seen, failures)) as base:
        rows = HttpCdxClient(f"{base}/cdx", dialect="ia", retry=FAST).lookup(
            "http://example.com/paper.pdf")
    assert len(rows) == 3 and len(seen) == 3


def test_5xx_beyond_the_retries_is_a_cdx_error(collection):
    seen, failures = [], [100]
    with serve_http(_ia_handler(_entries(collection), seen, failures)) as base:
        with pytest.raises(CdxError, match="503"):
            HttpCdxClient(f"{base}/cdx", dialect="ia", retry=FAST).lookup("http://example.com/a")
    assert len(seen) == 3  # the first try and two retries, no more


def test_4xx_is_a_cdx_error_without_retry():
    seen = []

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            self.reply(400)

    with serve_http(Handler) as base:
        with pytest.raises(CdxError, match="400"):
            HttpCdxClient(f"{base}/cdx", dialect="pywb", retry=FAST).lookup("http://example.com/")
    assert len(seen) == 1


def test_unreachable_service_is_a_cdx_error():
    cdx = HttpCdxClient(f"http://127.0.0.1:{free_port()}/cdx", dialect="ia", timeout=2, retry=FAST)
    with pytest.raises(CdxError, match="unreachable"):
        cdx.lookup("http://example.com/")


@pytest.mark.parametrize("body", [
    '[["urlkey","timestamp"],["com,example)/"]]',  # row shorter than the header
    '[["urlkey","timestamp","original","mimetype","statuscode","digest"],'
    '["com,example)/","2020","http://example.com/","text/html","200","AAAA"]]',  # bad values
    '{"urlkey": "com,example)/", "timestamp": "20200101000000"',  # cut NDJSON
    '["not", "an", "array of arrays"]',
    '{"urlkey": "com,example)/", "timestamp": "20200101000000", "url": "http://example.com/", '
    '"digest": "sha256:abc"}',
    '[1, 2]',
])
def test_bad_rows_are_cdx_errors(body):
    with pytest.raises(CdxError):
        parse_cdx_json(body)


def test_both_json_dialects_parse_to_the_same_row():
    digest = sha1_hex_to_b32("ab" * 20)
    ia = json.dumps([IA_HEADER, ["com,example)/a", "20200101000000", "http://example.com/a",
                                 "application/pdf", "200", digest, "-", "-", "10", "20", "w.warc.gz"]])
    pywb = json.dumps({"urlkey": "com,example)/a", "timestamp": "20200101000000",
                       "url": "http://example.com/a", "mime": "application/pdf", "status": "200",
                       "digest": digest, "length": "10", "offset": "20", "filename": "w.warc.gz",
                       "source": "c/indexes/index.cdxj"})
    assert parse_cdx_json(ia) == parse_cdx_json(pywb + "\n")
    row = parse_cdx_json(ia)[0]
    assert (row.sha1hex, row.warc_offset, row.warc_csize) == ("ab" * 20, 20, 10)
    assert parse_cdx_json("") == [] and parse_cdx_json("[]") == []


def test_archived_headers_undo_pywb_renames_and_additions():
    # As measured from pywb 2.10 replaying a capture that had these headers itself.
    pairs = [("Content-Type", "application/pdf"), ("X-Archive-Orig-Date", "Tue, 01 Jan 2019"),
             ("Content-Length", "21"), ("Link", '<http://x/>; rel="canonical"'),
             ("Link", "<http://example.com/a>; rel=original"), ("Set-Cookie", "a=b"),
             ("X-Archive-Orig-Server", "Apache"), ("Content-Location", "http://x/y"),
             ("Content-Location", "http://127.0.0.1/c/2019id_/http://example.com/a"),
             ("Memento-Datetime", "foo"), ("Memento-Datetime", "Tue, 01 Jan 2019 00:00:00 GMT"),
             ("X-Archive-Orig-Transfer-Encoding", "chunked"), ("Date", "Mon, 30 Nov 2026"),
             ("Transfer-Encoding", "chunked"), ("X-Archive-Src", "w.warc.gz")]
    assert archived_headers(pairs) == {
        "content-type": "application/pdf", "date": "Tue, 01 Jan 2019", "content-length": "21",
        "link": '<http://x/>; rel="canonical"', "set-cookie": "a=b", "server": "Apache",
        "content-location": "http://x/y", "memento-datetime": "foo",
        "transfer-encoding": "chunked"}


def _replay_handler(status, headers, body=b""):
    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.reply(status, body, headers)

    return Handler


def test_replay_error_page_without_memento_datetime_is_a_wayback_error(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/paper.pdf")[-1]
    with serve_http(_replay_handler(503, [("Content-Type", "text/html")], b"<html>err")) as base:
        with pytest.raises(WaybackError, match="503") as err:
            HttpReplayClient(base, local_cdx, retry=FAST).fetch(row, 1000)
    assert not isinstance(err.value, WaybackContentError)


def test_replayed_archived_404_is_a_capture(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/paper.pdf")[-1]
    handler = _replay_handler(404, [("Memento-Datetime", "Wed, 01 Jan 2020 00:00:00 GMT")], PDF)
    with serve_http(handler) as base:
        capture = HttpReplayClient(base, local_cdx, retry=FAST).fetch(row, 10**6)
    assert capture.status_code == 404 and capture.body == PDF


def test_replayed_payload_with_wrong_digest_is_a_content_error(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/paper.pdf")[-1]
    handler = _replay_handler(200, [("Memento-Datetime", "Wed, 01 Jan 2020 00:00:00 GMT")],
                              PDF + b"tampered")
    with serve_http(handler) as base:
        with pytest.raises(WaybackContentError, match="digest"):
            HttpReplayClient(base, local_cdx, retry=FAST).fetch(row, 10**6)
        capture = HttpReplayClient(base, local_cdx, retry=FAST).fetch(row, 100)
    assert capture.body_truncated and capture.body == b""  # too big to check: not checked


def test_range_reads_equal_local_reads(collection):
    local_cdx, local_content = open_local(str(collection))
    with serve_ranges(collection / "archive") as (base, seen):
        ranged = HttpRangeWarcClient(base, local_cdx, retry=FAST)
        for url in ["http://example.com/paper.pdf", "http://example.com/moved",
                    "http://example.com/landing", "http://example.com/many.pdf"]:
            for row in local_cdx.lookup(url):
                if row.datetime == "20220101000000":  # revisit of a revisit
                    with pytest.raises(WaybackContentError):
                        ranged.fetch(row, 10**6)
                    continue
                assert ranged.fetch(row, 10**6) == local_content.fetch(row, 10**6)
                assert ranged.fetch(row, 50) == local_content.fetch(row, 50)
    row = local_cdx.lookup("http://example.com/moved")[0]
    expected = f"bytes={row.warc_offset}-{row.warc_offset + row.warc_csize - 1}"
    assert (f"/{row.warc_path}", expected) in seen


def test_range_read_of_missing_warc_is_a_wayback_error(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/moved")[0]
    (collection / "archive" / row.warc_path).rename(collection / "archive" / "elsewhere.warc.gz")
    with serve_ranges(collection / "archive") as (base, _seen):
        with pytest.raises(WaybackError, match="not found") as err:
            HttpRangeWarcClient(base, local_cdx, retry=FAST).fetch(row, 1000)
    assert not isinstance(err.value, WaybackContentError)


def test_range_read_beyond_the_file_is_a_content_error(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/moved")[0]
    far = replace(row, warc_offset=10**9)
    with serve_ranges(collection / "archive") as (base, _seen):
        with pytest.raises(WaybackContentError, match="beyond"):
            HttpRangeWarcClient(base, local_cdx, retry=FAST).fetch(far, 1000)
        shifted = replace(row, warc_offset=row.warc_offset + 3)
        with pytest.raises(WaybackContentError):
            HttpRangeWarcClient(base, local_cdx, retry=FAST).fetch(shifted, 1000)


def test_range_store_unreachable_is_a_wayback_error(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/moved")[0]
    client = HttpRangeWarcClient(f"http://127.0.0.1:{free_port()}", local_cdx, timeout=2,
                                 retry=FAST)
    with pytest.raises(WaybackError, match="unreachable"):
        client.fetch(row, 1000)


def test_clients_are_safe_from_many_threads(collection):
    local_cdx, local_content = open_local(str(collection))
    urls = ["http://example.com/paper.pdf", "http://example.com/moved",
            "http://example.com/landing", "http://example.com/many.pdf"] * 8
    with serve_http(_ia_handler(_entries(collection), [])) as cdx_base, \
            serve_ranges(collection / "archive") as (warc_base, _seen):
        cdx, content = open_archive(cdx_base, warc_base=warc_base)

        def work(url):
            rows = cdx.lookup(url)
            return rows, content.fetch(rows[-1], 10**6)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, urls))
    for url, (rows, capture) in zip(urls, results, strict=True):
        assert rows == local_cdx.lookup(url)
        assert capture == local_content.fetch(rows[-1], 10**6)
    assert threading.active_count() < 20


def test_wayback_endpoints_for_pywb_and_the_internet_archive():
    assert wayback_endpoints("http://127.0.0.1:8080/coll/") == (
        "http://127.0.0.1:8080/coll/cdx", "http://127.0.0.1:8080/coll")
    assert wayback_endpoints("https://web.archive.org") == (
        "https://web.archive.org/cdx/search/cdx", "https://web.archive.org/web")
    cdx, content = open_archive("http://127.0.0.1:1/coll", type("S", (), {"cdx_dialect": "ia"})())
    assert cdx.dialect == "ia" and isinstance(content, HttpReplayClient)
    with pytest.raises(ValueError, match="warc_base"):
        open_archive(".", warc_base="http://127.0.0.1:1/")


def test_replay_default_content_type_is_restored_from_the_row():
    headers = {"content-type": "text/html; charset=utf-8"}
    restore_content_type(headers, "application/xhtml+xml")
    assert headers == {"content-type": "application/xhtml+xml; charset=utf-8"}
    kept = {"content-type": "application/pdf"}
    restore_content_type(kept, "text/html")  # not a type the replay defaults to: left alone
    assert kept == {"content-type": "application/pdf"}
    revisit = {"content-type": "text/html"}
    restore_content_type(revisit, "warc/revisit")
    assert revisit == {"content-type": "text/html"}


def test_replayed_redirect_body_above_the_limit_is_not_kept(collection):
    local_cdx, _ = open_local(str(collection))
    row = local_cdx.lookup("http://example.com/moved")[0]
    handler = _replay_handler(301, [("Memento-Datetime", "Thu, 02 Jan 2020 00:00:00 GMT"),
                                    ("Location", "https://example.com/paper.pdf")], b"x" * 100_000)
    with serve_http(handler) as base:
        capture = HttpReplayClient(base, local_cdx, retry=FAST).fetch(row, 10)
    assert capture.body == b"" and capture.body_truncated
    assert capture.location == "https://example.com/paper.pdf"
