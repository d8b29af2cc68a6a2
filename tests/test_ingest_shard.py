"""run_shard: input order kept at any concurrency, bugs contained, counts exact."""

from __future__ import annotations

import random
import threading
import time

import pytest
from fakes import FakeArchive, make_pdf

from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.shard import run_shard, shard_of
from pipeline.ingest.worker import IngestWorker


class SlowArchive(FakeArchive):
    """Random per-lookup delays so that threads finish out of order."""

    def __init__(self, seed: int):
        super().__init__()
        self._rnd = random.Random(seed)
        self._rlock = threading.Lock()
        self.threads: set[str] = set()

    def lookup(self, url, limit=25):
        with self._rlock:
            delay = self._rnd.random() * 0.004
            self.threads.add(threading.current_thread().name)
        time.sleep(delay)
        return super().lookup(url, limit)


def build(seed: int = 1):
    a = SlowArchive(seed)
    requests = []
    for i in range(60):
        url = f"http://h{i % 7}.example.org/p/{i}.pdf"
        if i % 5 == 0:
            pass  # no capture
        elif i % 5 == 1:
            a.add(url, b"<html><body>nothing</body></html>", mimetype="text/html")
        else:
            a.add(url, make_pdf(f"paper {i}"))
        requests.append({"base_url": url, "ingest_type": "pdf", "ext_ids": {"sha1": f"{i:040d}"}})
    return a, requests


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_output_order_is_input_order(concurrency):
    a, requests = build()
    out = []
    counts = run_shard(requests, IngestWorker(a, a, IngestSettings()), out.append, concurrency)
    assert [r["request"] for r in out] == requests
    assert counts == {"total": 60, "no-capture": 12, "no-pdf-link": 12, "success": 36}
    if concurrency > 1:
        assert len(a.threads) > 1  # really ran in parallel


def test_same_results_across_concurrency_levels():
    outs = []
    for conc, seed in ((1, 1), (4, 2), (16, 3)):
        a, requests = build(seed)
        out = []
        run_shard(iter(requests), IngestWorker(a, a, IngestSettings()), out.append, conc)
        outs.append(out)
    assert outs[0] == outs[1] == outs[2]


class ExplodingWorker:
    """A worker whose `process` itself raises on some requests (worse than any archive bug)."""

    def __init__(self, inner):
        self.inner = inner

    def process(self, request):
        if request["base_url"].endswith("/13.pdf"):
            raise RuntimeError("boom")
        if request["base_url"].endswith("/17.pdf"):
            raise ValueError("bad value")
        return self.inner.process(request)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_bug_on_one_request_does_not_stop_the_shard(concurrency):
    a, requests = build()
    out = []
    counts = run_shard(requests, ExplodingWorker(IngestWorker(a, a, IngestSettings())),
                       out.append, concurrency)
    assert len(out) == 60 and counts["total"] == 60
    assert counts["error"] == 2
    bad = {r["request"]["base_url"].rsplit("/", 1)[1]: r for r in out if r["status"] == "error"}
    assert bad["13.pdf"]["error_message"] == "RuntimeError: boom"
    assert bad["17.pdf"]["error_message"] == "ValueError: bad value"
    assert [r["request"] for r in out] == requests
    assert counts["success"] == 36 - 2  # 13 and 17 would have been PDFs; the rest went on


def test_write_failure_stops_the_shard():
    a, requests = build()

    def write(result):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_shard(requests, IngestWorker(a, a, IngestSettings()), write, 4)


def test_shard_of_round_robin():
    assert [shard_of(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    sizes = [sum(1 for i in range(1001) if shard_of(i, 4) == s) for s in range(4)]
    assert sizes == [251, 250, 250, 250]
    with pytest.raises(ValueError):
        shard_of(0, 0)
    with pytest.raises(ValueError):
        run_shard([], None, print, 0)
