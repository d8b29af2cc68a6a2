"""The archive's HTTP clients talk to the archive only: no redirect followed, no
environment proxy. A CDX service or WARC store answering 3xx, or an `HTTP_PROXY`
left in the environment, must not send a read to another host; a proxy is used
only when configured (`[ingest] archive_proxy`)."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest
from archive_collections import CollectionBuilder
from services import QuietHandler, serve_http, serve_ranges

from pipeline.archive import open_archive
from pipeline.archive.cdxapi import HttpCdxClient
from pipeline.archive.local import open_local
from pipeline.archive.model import ArchiveError, CdxError, WaybackError
from pipeline.archive.rangeread import HttpRangeWarcClient
from pipeline.archive.replay import HttpReplayClient
from pipeline.httpretry import Retrying

FAST = Retrying(retries=1, backoff=0.01)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
URL = "http://example.com/paper.pdf"
ENV_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _recorder(answer):
    """A loopback server recording every request line; `answer(handler)` replies."""
    seen: list[str] = []
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802
            with lock:
                seen.append(self.path)
            answer(self)

    return Handler, seen


def _empty_cdx(handler):
    handler.reply(200, b"", [("Content-Type", "text/plain")])


@pytest.fixture()
def collection(tmp_path):
    b = CollectionBuilder(tmp_path / "coll")
    b.response(URL, "20200101000000", PDF)
    b.finish()
    return b.root


@pytest.fixture()
def elsewhere():
    """Another host: whatever reaches it left the archive."""
    handler, seen = _recorder(_empty_cdx)
    with serve_http(handler) as base:
        yield base, seen


@pytest.fixture()
def env_proxy(monkeypatch, elsewhere):
    """Every proxy variable of the environment points at `elsewhere`, nothing bypasses it."""
    base, seen = elsewhere
    for name in ENV_PROXY_VARS:
        monkeypatch.setenv(name, base)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_cdx_service_redirect_is_a_cdx_error_not_followed(elsewhere):
    other, seen = elsewhere
    handler, asked = _recorder(lambda h: h.reply(302, b"", [("Location", f"{other}/cdx?url=x")]))
    with serve_http(handler) as base:
        client = HttpCdxClient(f"{base}/cdx", dialect="pywb", retry=FAST)
        with pytest.raises(CdxError, match="answered 302"):
            client.lookup(URL)
    assert len(asked) == 1 and seen == []


def test_warc_store_redirect_is_a_wayback_error_not_followed(collection, elsewhere):
    other, seen = elsewhere
    cdx, _ = open_local(str(collection))
    row = cdx.lookup(URL)[0]
    handler, asked = _recorder(lambda h: h.reply(301, b"", [("Location", f"{other}/{row.warc_path}")]))
    with serve_http(handler) as base:
        with pytest.raises(WaybackError, match="answered HTTP 301"):
            HttpRangeWarcClient(base, cdx, retry=FAST).fetch(row, 10**6)
    assert len(asked) == 1 and seen == []


def test_environment_proxies_are_ignored(collection, env_proxy):
    local_cdx, local_content = open_local(str(collection))
    row = local_cdx.lookup(URL)[0]
    handler, asked = _recorder(_empty_cdx)
    with serve_http(handler) as cdx_base, serve_ranges(collection / "archive") as (warc_base, ranges):
        assert HttpCdxClient(f"{cdx_base}/cdx", dialect="pywb", retry=FAST).lookup(URL) == []
        ranged = HttpRangeWarcClient(warc_base, local_cdx, retry=FAST)
        assert ranged.fetch(row, 10**6) == local_content.fetch(row, 10**6)
        replay = HttpReplayClient(cdx_base, local_cdx, retry=FAST)
        with pytest.raises(WaybackError):  # the stand-in is no replay service: an error page
            replay.fetch(row, 10**6)
    assert env_proxy == []  # nothing went through the environment's proxy
    assert len(asked) == 2 and len(ranges) == 1  # the services were asked directly


def test_a_configured_proxy_is_used(collection, elsewhere):
    proxy, through_proxy = elsewhere
    local_cdx, _ = open_local(str(collection))
    settings = SimpleNamespace(cdx_dialect="pywb", archive_proxy=proxy)
    cdx, _content = open_archive("http://wayback.invalid:8080/coll", settings)
    assert cdx.lookup(URL) == []
    # a proxy receives the absolute URL of the archive it forwards to
    assert len(through_proxy) == 1
    assert through_proxy[0].startswith("http://wayback.invalid:8080/coll/cdx?url=")
    ranged = HttpRangeWarcClient("http://warcs.invalid", local_cdx, retry=FAST, proxy=proxy)
    with pytest.raises(ArchiveError):  # the stand-in proxy answers an empty body: no record
        ranged.fetch(local_cdx.lookup(URL)[0], 10**6)
    assert through_proxy[1].startswith("http://warcs.invalid/")


def test_a_proxy_must_be_an_http_url():
    with pytest.raises(ValueError, match="archive proxy"):
        HttpCdxClient("http://127.0.0.1:9/cdx", proxy="127.0.0.1:3128")
    assert json.dumps(HttpCdxClient("http://127.0.0.1:9/cdx").proxy) == "null"
