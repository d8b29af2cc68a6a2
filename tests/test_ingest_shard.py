"""run_shard: input order kept at any concurrency, on threads or processes, bugs contained,
counts exact."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from fakes import FakeArchive, make_pdf

from pipeline.checks import StepFailed
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.shard import process_count, run_shard, shard_of
from pipeline.ingest.worker import IngestWorker
from pipeline.sinks.message import PDF_TEXT, Message, attach, take


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
    """A worker whose `process` itself raises on some requests (worse than any archive bug):
    by default a bug on requests 13 and 17; `raises` maps other URL endings to exceptions."""

    def __init__(self, inner, raises: dict | None = None):
        self.inner = inner
        self.raises = raises or {"/13.pdf": RuntimeError("boom"),
                                 "/17.pdf": ValueError("bad value")}

    def process(self, request):
        for ending, exc in self.raises.items():
            if request["base_url"].endswith(ending):
                raise exc
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


# --- processes: the local archive's requests dealt to forked workers ------------------------


class PidWorker:
    """Records which process made each result, and queues a sink message on it (the messages
    must travel with their results from a worker process to the shard's writer)."""

    def __init__(self, inner):
        self.inner = inner

    def process(self, request):
        result = self.inner.process(request)
        result["pid"] = os.getpid()
        attach(result, Message(PDF_TEXT, request["ext_ids"]["sha1"], {"n": request["base_url"]}))
        return result


@pytest.fixture
def three_cpus(monkeypatch):
    """The shard may use three CPUs, whatever this box has (processes are per CPU)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2},
                        raising=False)


def test_processes_give_the_results_of_one_thread_in_input_order_with_their_messages(three_cpus):
    a, requests = build()
    one: list[dict] = []
    run_shard(requests, IngestWorker(a, a, IngestSettings()), one.append, 1)
    out: list[dict] = []
    counts = run_shard(iter(requests), PidWorker(IngestWorker(a, a, IngestSettings())),
                       out.append, concurrency=4, processes=True)
    assert {r.pop("pid") for r in out}.isdisjoint({os.getpid()})  # made in worker processes
    messages = [take(r) for r in out]
    assert out == one  # same results, in input order
    assert [m[0].key for m in messages] == [r["ext_ids"]["sha1"] for r in requests]
    assert counts == {"total": 60, "no-capture": 12, "no-pdf-link": 12, "success": 36}


def test_processes_contain_a_bug_on_one_request(three_cpus):
    a, requests = build()
    out: list[dict] = []
    counts = run_shard(requests, ExplodingWorker(IngestWorker(a, a, IngestSettings())),
                       out.append, 4, processes=True)
    assert [r["request"] for r in out] == requests and counts["error"] == 2
    assert [r["error_message"] for r in out if r["status"] == "error"] == [
        "RuntimeError: boom", "ValueError: bad value"]


def test_processes_stop_the_shard_on_step_failed_after_writing_only_what_came_before(three_cpus):
    a, requests = build()
    out: list[dict] = []
    with pytest.raises(StepFailed, match="x.warc.gz cannot be read: Input/output error"):
        # the environment fails on request 40 (an unreadable archive)
        failing = {"/40.pdf": StepFailed("local archive WARC x.warc.gz cannot be read: "
                                         "Input/output error")}
        run_shard(requests, ExplodingWorker(IngestWorker(a, a, IngestSettings()), failing),
                  out.append, 4, processes=True)
    assert [r["request"] for r in out] == requests[:len(out)] and len(out) <= 40


@pytest.mark.parametrize("concurrency,cpus,expected", [(4, 2, 2), (1, 2, 1), (4, 8, 4), (3, 1, 1)])
def test_processes_are_at_most_one_per_cpu_and_at_most_concurrency(monkeypatch, concurrency, cpus,
                                                                  expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)),
                        raising=False)
    assert process_count(concurrency) == expected


def test_processes_with_one_cpu_run_in_this_thread(monkeypatch):
    """No fork and no thread pool for one CPU: the local archive never waits, threads only
    wait for each other (four threads ran the sample world's shard slower than one)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    a, requests = build()
    out: list[dict] = []
    run_shard(requests, PidWorker(IngestWorker(a, a, IngestSettings())), out.append, 4,
              processes=True)
    assert {r["pid"] for r in out} == {os.getpid()}
    assert a.threads == {threading.current_thread().name}
