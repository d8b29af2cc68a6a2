"""The fault proxy itself: each fault seen by a plain HTTP client, in front of the sample world's
pywb (CDX and replay) or a stdlib WARC store (Range reads). Timings are asserted one way only
(at least the delay configured, never at most): the box is busy."""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import pytest
from faultplan import Call, Decider, archived_url, call_kind
from faultproxy import (
    Delay,
    Drop,
    FaultPlan,
    FaultProxy,
    Reset,
    Respond,
    Rule,
    Trickle,
    Truncate,
    retry_after_violations,
    too_many_requests,
)
from services import QuietHandler, serve_http, serve_ranges

pytestmark = pytest.mark.services


def fetch(url: str, headers: dict | None = None, proxy: str | None = None):
    """(status, headers, body) of one GET with http.client: no retry, no redirect, nothing
    hidden. With `proxy`, the request goes to it in absolute form (as to an HTTP proxy)."""
    parts = urlsplit(proxy or url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = url if proxy else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def replay_size(url: str) -> int | None:
    """The Content-Length of a 200 replay of `url` (the body left unread), else None."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path)
        response = conn.getresponse()
        length = response.getheader("Content-Length")
        return int(length) if response.status == 200 and length else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def captures(world, wayback):
    """Two archived PDFs of the sample world (url, timestamp) that pywb replays, of 2-500 KB,
    the bigger first. The world damages some index lines and records on purpose, and has
    huge captures (that compress well): those are skipped."""
    rows = []
    for line in (world / "collection" / "indexes" / "index.cdxj").read_text().splitlines():
        try:
            _key, ts, data = line.split(" ", 2)
            row = json.loads(data)
        except ValueError:
            continue
        if row.get("status") == "200" and row.get("mime") == "application/pdf":
            rows.append((int(row["length"]), row["url"], ts))
    found = {}
    for _length, url, ts in sorted(rows, reverse=True):
        if url not in found and 2_000 < (replay_size(replay_url(wayback, (url, ts))) or 0) < 500_000:
            found[url] = ts
            if len(found) == 2:
                return tuple(found.items())
    raise AssertionError("the sample world has fewer than two replayable PDFs of 2-500 KB")


class _Echo(QuietHandler):
    """Any GET: 200 and 4 KB naming the path (a quick upstream for many-call tests)."""

    def do_GET(self):  # noqa: N802
        self.reply(200, (self.path.encode() + b"\n") * (4096 // (len(self.path) + 1) + 1))


@pytest.fixture
def stub():
    """A FaultProxy in front of `_Echo`."""
    with serve_http(_Echo) as base, FaultProxy(base + "/web") as proxy:
        yield proxy


def cdx_url(base: str, url: str) -> str:
    return f"{base}/cdx?url={quote(url, safe='')}&output=json&allowFuzzy=0"


def replay_url(base: str, capture: tuple[str, str]) -> str:
    url, ts = capture
    return f"{base}/{ts}id_/{url}"


# -- forwarding --------------------------------------------------------------------------------


def test_forwards_cdx_and_replay_unchanged_and_records_each_call(faultproxy, wayback, captures):
    big = captures[0]
    for direct, proxied in [(cdx_url(wayback, big[0]), cdx_url(faultproxy.url, big[0])),
                            (replay_url(wayback, big), replay_url(faultproxy.url, big))]:
        d_status, d_headers, d_body = fetch(direct)
        p_status, p_headers, p_body = fetch(proxied)
        assert (p_status, p_body) == (d_status, d_body) == (200, d_body) and d_body
        assert p_headers.get("Content-Type") == d_headers.get("Content-Type")
    cdx, replay = faultproxy.calls
    assert cdx.kind == "cdx" and cdx.url == big[0] and cdx.path == urlsplit(wayback).path + "/cdx"
    assert "allowFuzzy=0" in cdx.query and cdx.method == "GET"
    assert replay.kind == "replay" and replay.url == big[0] and replay.query == ""
    for call, body in [(cdx, fetch(cdx_url(wayback, big[0]))[2]), (replay, d_body)]:
        assert call.faults == () and call.upstream_status == call.status == 200
        assert call.bytes_sent == len(body) and call.error is None
        assert call.started <= call.forwarded_at <= call.answered <= call.ended
    assert [c.index for c in faultproxy.calls] == [0, 1]
    assert faultproxy.proxied(f"{wayback}/cdx?url=x") == f"{faultproxy.url}/cdx?url=x"
    with pytest.raises(ValueError, match="not on the upstream"):
        faultproxy.proxied("http://127.0.0.1:1/world")


def test_range_reads_pass_through_to_a_warc_store(world):
    archive = world / "collection" / "archive"
    warc = sorted(archive.iterdir())[0]
    data = warc.read_bytes()
    with serve_ranges(archive) as (store, seen), FaultProxy(store) as proxy:
        status, headers, body = fetch(f"{proxy.url}/{warc.name}", {"Range": "bytes=100-299"})
    assert status == 206 and body == data[100:300]
    assert headers["Content-Range"] == f"bytes 100-299/{len(data)}"
    assert seen == [(f"/{warc.name}", "bytes=100-299")]  # the store saw the Range header
    (call,) = proxy.calls
    assert (call.kind, call.range, call.upstream_status, call.bytes_sent) == (
        "warc", "bytes=100-299", 206, 200)


def test_used_as_an_http_proxy_it_forwards_to_its_upstream_only(faultproxy, wayback, captures):
    status, _, body = fetch(replay_url(wayback, captures[1]), proxy=faultproxy.base)
    assert status == 200 and body == fetch(replay_url(wayback, captures[1]))[2]
    other = f"http://127.0.0.1:{faultproxy.upstream_port + 1}/x"
    status, _, body = fetch(other, proxy=faultproxy.base)
    assert status == 502 and b"forwards only to" in body
    first, second = faultproxy.calls
    assert first.upstream_status == 200 and first.url == captures[1][0]
    assert second.faults == ("foreign-target",) and second.forwarded_at is None


@pytest.mark.parametrize("upstream", ["http://example.com:80/", "http://localhost:8080/",
                                      "https://127.0.0.1:8443/", "http://127.0.0.1/"])
def test_only_a_loopback_upstream(upstream):
    with pytest.raises(ValueError, match="127.0.0.1"):
        FaultProxy(upstream)


def test_binds_loopback_only(faultproxy):
    assert faultproxy._server.socket.getsockname()[0] == "127.0.0.1"
    assert faultproxy.url == faultproxy.base + "/world"


# -- latency, slow bodies --------------------------------------------------------------------


def test_latency_is_added_to_every_call(faultproxy, captures):
    faultproxy.plan = FaultPlan(seed=7, rules=[Rule(Delay(0.15, jitter=0.1))])
    elapsed = []
    for capture in captures:
        t0 = time.monotonic()
        assert fetch(replay_url(faultproxy.url, capture))[0] == 200
        elapsed.append(time.monotonic() - t0)
    calls = faultproxy.calls
    assert [c.faults for c in calls] == [("delay",), ("delay",)]
    for call, seconds in zip(calls, elapsed, strict=True):
        assert 0.15 <= call.delay <= 0.25  # the decided hold: seconds + jitter drawn
        assert call.forwarded_at - call.started >= call.delay  # held before forwarding
        assert seconds >= call.delay
    assert calls[0].delay != calls[1].delay  # jitter drawn per call


def test_trickled_body_arrives_whole_and_slowly(faultproxy, wayback, captures):
    body = fetch(replay_url(wayback, captures[0]))[2]
    chunk = max(1, len(body) // 5)
    pieces = -(-len(body) // chunk)
    faultproxy.plan = FaultPlan([Rule(Trickle(chunk=chunk, interval=0.1))])
    parts = urlsplit(replay_url(faultproxy.url, captures[0]))
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    t0 = time.monotonic()
    conn.request("GET", parts.path)
    got = conn.getresponse().read()
    waited = time.monotonic() - t0
    conn.close()
    assert got == body
    (call,) = faultproxy.calls
    assert call.faults == ("trickle",) and call.bytes_sent == len(body)
    assert call.ended - call.answered >= (pieces - 1) * 0.1
    assert waited >= (pieces - 1) * 0.1  # the client saw it too


# -- answers on the archive's behalf ---------------------------------------------------------


def test_429_retry_after_in_both_forms(faultproxy, captures):
    url = cdx_url(faultproxy.url, captures[0][0])
    faultproxy.plan = FaultPlan([Rule(too_many_requests(2), times=1),
                                 Rule(too_many_requests(3, "http-date"), times=1)])
    status, headers, _ = fetch(url)
    assert status == 429 and headers["Retry-After"] == "2"
    before = time.time()
    status, headers, _ = fetch(url)
    assert status == 429
    when = email.utils.parsedate_to_datetime(headers["Retry-After"])
    assert when.tzinfo is not None and when.timestamp() - before >= 3
    first, second = faultproxy.calls[:2]
    assert (first.retry_after, first.retry_after_header) == (2.0, "2")
    assert second.retry_after >= 3 and second.retry_after_header == headers["Retry-After"]
    assert first.upstream_status is None and second.forwarded_at is None  # never reached pywb


def test_retry_after_violations_tell_an_early_client_from_a_patient_one(faultproxy, captures):
    url = cdx_url(faultproxy.url, captures[0][0])
    faultproxy.plan = FaultPlan([Rule(too_many_requests(1), times=1)])
    status, headers, _ = fetch(url)
    assert status == 429
    assert fetch(url)[0] == 200  # at once: early
    time.sleep(float(headers["Retry-After"]))
    assert fetch(url)[0] == 200  # after waiting as told
    calls = faultproxy.calls
    assert [(p.index, e.index) for p, e in retry_after_violations(calls)] == [(0, 1)]
    assert retry_after_violations([calls[0], calls[2]]) == []


def test_5xx_burst_of_exactly_n_calls_then_pass(faultproxy, captures):
    url = replay_url(faultproxy.url, captures[1])
    faultproxy.plan = FaultPlan([Rule(Respond(502), after=1, times=3)])
    statuses = [fetch(url)[0] for _ in range(6)]
    assert statuses == [200, 502, 502, 502, 200, 200]
    assert [c.upstream_status for c in faultproxy.calls] == [200, None, None, None, 200, 200]
    assert faultproxy.fired() == [3]


def test_drop_resets_before_any_answer(faultproxy, captures):
    faultproxy.plan = FaultPlan([Rule(Drop())])
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        fetch(replay_url(faultproxy.url, captures[1]))
    (call,) = faultproxy.calls
    assert call.faults == ("drop",) and call.status is None and call.forwarded_at is None


# -- cut bodies --------------------------------------------------------------------------------


def test_reset_mid_body_breaks_the_read(faultproxy, wayback, captures):
    body = fetch(replay_url(wayback, captures[0]))[2]
    assert len(body) > 600
    faultproxy.plan = FaultPlan([Rule(Reset(after_bytes=500))])
    with pytest.raises(ConnectionResetError):  # not a clean short end: an RST
        fetch(replay_url(faultproxy.url, captures[0]))
    (call,) = faultproxy.calls
    assert call.faults == ("reset",) and call.upstream_status == 200 and call.bytes_sent == 500


@pytest.mark.parametrize("which", ["replay", "cdx"])  # a Content-Length body, a chunked one
def test_truncate_gives_a_short_body_the_client_detects(faultproxy, wayback, captures, which):
    make = {"replay": lambda base: replay_url(base, captures[0]),
            "cdx": lambda base: cdx_url(base, captures[0][0])}[which]
    body = fetch(make(wayback))[2]
    cut = len(body) // 2
    faultproxy.plan = FaultPlan([Rule(Truncate(after_bytes=cut))])
    with pytest.raises(http.client.IncompleteRead) as info:
        fetch(make(faultproxy.url))
    assert info.value.partial == body[:cut]
    (call,) = faultproxy.calls
    assert call.faults == ("truncate",) and call.bytes_sent == cut


# -- outages -----------------------------------------------------------------------------------


def test_refuse_outage_is_a_switch(faultproxy, captures):
    url = replay_url(faultproxy.url, captures[1])
    assert fetch(url)[0] == 200
    faultproxy.start_outage("refuse")
    assert faultproxy.in_outage
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", faultproxy.port), timeout=5)
    faultproxy.end_outage()
    assert not faultproxy.in_outage and fetch(url)[0] == 200
    assert [c.status for c in faultproxy.calls] == [200, 200]  # refused ones never arrived
    ((mode, start, end),) = faultproxy.outages
    assert mode == "refuse" and faultproxy.calls[0].answered <= start < end <= faultproxy.calls[1].started


def test_503_outage_answers_every_call_until_switched_off(faultproxy, captures):
    faultproxy.plan = FaultPlan([Rule(Respond(500), times=1)])
    with faultproxy.outage("503", retry_after=5):
        answers = [fetch(cdx_url(faultproxy.url, captures[0][0])),
                   fetch(replay_url(faultproxy.url, captures[1]))]
    assert [(s, h["Retry-After"]) for s, h, _ in answers] == [(503, "5"), (503, "5")]
    assert fetch(replay_url(faultproxy.url, captures[1]))[0] == 500  # the plan resumes as it was
    calls = faultproxy.calls
    assert [c.faults for c in calls] == [("outage",), ("outage",), ("respond",)]
    assert all(c.forwarded_at is None for c in calls)


def test_outage_for_seconds_ends_by_itself(faultproxy, captures):
    faultproxy.start_outage("refuse", seconds=0.3)
    deadline = time.monotonic() + 20
    while faultproxy.in_outage and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fetch(replay_url(faultproxy.url, captures[1]))[0] == 200
    ((_, start, end),) = faultproxy.outages
    assert end - start >= 0.3


# -- which calls -------------------------------------------------------------------------------


def test_failures_limited_to_matching_urls(faultproxy, captures):
    (a, _), (b, _) = captures
    faultproxy.plan = FaultPlan([Rule(Respond(500), url=re.escape(a)),
                                 Rule(Respond(504), kind="cdx", path=r"/cdx$", url=re.escape(b))])
    got = [fetch(cdx_url(faultproxy.url, a))[0], fetch(replay_url(faultproxy.url, captures[0]))[0],
           fetch(cdx_url(faultproxy.url, b))[0], fetch(replay_url(faultproxy.url, captures[1]))[0]]
    assert got == [500, 500, 504, 200]
    assert [c.rule for c in faultproxy.calls] == [0, 0, 1, None]


def test_same_seed_same_faults_other_seed_others(stub):
    def run(seed):
        stub.plan = FaultPlan(seed=seed, rules=[
            Rule(Delay(0.0, jitter=0.01)),
            Rule(Respond(503), probability=0.4),
            Rule(Truncate(100), kind="replay", probability=0.5)])
        stub.clear_calls()
        for i in range(24):
            try:
                fetch(f"{stub.url}/2020{i:02d}id_/http://example.com/{i % 3}.pdf" if i % 3
                      else cdx_url(stub.url, f"http://example.com/{i}.pdf"))
            except http.client.IncompleteRead:
                pass
        return [(c.faults, c.status, c.delay) for c in stub.calls]

    first = run(3)
    assert run(3) == first
    assert run(4) != first
    kinds = {f for faults, _, _ in first for f in faults}
    assert kinds == {"delay", "respond", "truncate"}  # every rule fired at least once


def test_decider_is_deterministic_without_a_server():
    plan = FaultPlan(seed=11, rules=[Rule(Respond(503), probability=0.5, url="a")])
    decisions = [[Decider(plan).decide("GET", "/x/cdx", u, "cdx").faults for u in "abab"]
                 for _ in range(2)]
    assert decisions[0] == decisions[1]
    assert all(d == () for d in decisions[0][1::2])  # "b" never matches


def test_concurrent_calls_and_a_plan_changed_mid_run(stub):
    url = f"{stub.url}/2020id_/http://example.com/a.pdf"
    stub.plan = FaultPlan([Rule(Respond(503), times=7)])
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: fetch(url)[0], range(40)))
    assert sorted(statuses) == [200] * 33 + [503] * 7
    stub.plan = FaultPlan([Rule(Respond(429))])
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _: fetch(url)[0], range(8))) == {429}
    calls = stub.calls
    assert len(calls) == 48 and sorted(c.index for c in calls) == list(range(48))
    assert all(c.upstream_status == 200 for c in calls if c.status == 200)


@pytest.mark.parametrize("path, query, range_header, kind, url", [
    ("/world/cdx", "url=http%3A%2F%2Fa.org%2Fx.pdf&output=json", None, "cdx", "http://a.org/x.pdf"),
    ("/cdx/search/cdx", "url=a.org/x.pdf", None, "cdx", "a.org/x.pdf"),
    ("/web/2017id_/http://a.org/x", "y=1", None, "replay", "http://a.org/x?y=1"),
    ("/world/20170706005950/https://a.org/", "", None, "replay", "https://a.org/"),
    ("/petabox/CRAWL-1.warc.gz", "", "bytes=0-9", "warc", None),
    ("/store/CRAWL-1", "", "bytes=0-9", "warc", None),
    ("/world/", "", None, "other", None),
])
def test_calls_are_told_apart_by_kind_and_archived_url(path, query, range_header, kind, url):
    assert call_kind(path, range_header) == kind
    assert archived_url(path, query) == url


def test_rules_reject_nonsense():
    with pytest.raises(ValueError, match="kind"):
        Rule(Respond(503), kind="warcs")
    with pytest.raises(ValueError, match="probability"):
        Rule(Respond(503), probability=1.5)
    with pytest.raises(TypeError, match="not a fault"):
        Rule(503)


def test_upstream_gone_is_a_502_recorded_with_its_error():
    class Ok(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.reply(200, b"ok")

    with serve_http(Ok) as base:
        proxy = FaultProxy(base).start()
    try:
        status, _, _ = fetch(proxy.url + "/x")
        (call,) = proxy.calls
    finally:
        proxy.close()
    assert status == 502 and call.upstream_status is None and "upstream" in call.error
    assert isinstance(call, Call)


def test_an_upstream_cutting_its_own_body_is_passed_on_short_and_recorded():
    class Short(QuietHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)

    with serve_http(Short) as base, FaultProxy(base) as proxy:
        with pytest.raises(http.client.IncompleteRead) as info:
            fetch(proxy.url + "/x")
        (call,) = proxy.calls
    assert info.value.partial == b"x" * 10
    assert call.upstream_status == 200 and call.bytes_sent == 10
    assert call.error == "upstream: the body ended 990 bytes short"
