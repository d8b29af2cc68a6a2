"""The progress reporter: counts, rate, ETA, status histogram, report cadence, final message."""

from __future__ import annotations

import logging
import threading

import pytest

from pipeline.progress import Progress, Snapshot, counting, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recorder():
    calls: list[tuple[str, float | None]] = []
    return calls, lambda message, percent: calls.append((message, percent))


def test_reports_at_most_once_per_interval_with_rate_eta_and_histogram():
    clock = FakeClock()
    calls, listen = recorder()
    p = Progress("IngestShard 1/4", total=1000, unit="requests", interval=5.0,
                 listeners=[listen], clock=clock)
    for _ in range(100):
        p.update(status="success")
    assert calls == []  # no time has passed: nothing reported yet
    clock.now += 5.0
    p.update(status="no-capture")
    assert len(calls) == 1
    message, percent = calls[0]
    assert percent == pytest.approx(10.1)
    assert "IngestShard 1/4: 101/1,000 requests (10.1%)" in message
    assert "20/s" in message  # 101 in 5 s
    assert "ETA 0:00:45" in message  # 899 left at 20.2/s
    assert "Counter({'success': 100, 'no-capture': 1})" in message
    clock.now += 1.0
    p.update(status="success")
    assert len(calls) == 1  # within the interval of the last report


def test_finish_sends_the_final_counts_at_100_percent():
    clock = FakeClock()
    calls, listen = recorder()
    p = Progress("MergeFileMeta", total=None, interval=5.0, listeners=[listen], clock=clock)
    p.update(40)
    clock.now += 2.0
    final = p.finish()
    assert calls == [(final, 100.0)]
    assert final.startswith("done: MergeFileMeta: 40 lines")
    assert "20/s" in final and "ETA" not in final


def test_unknown_total_has_no_percentage_or_eta_until_the_end():
    snap = Snapshot("x", done=10, total=None, elapsed=2.0)
    assert snap.percent is None and snap.eta is None
    assert snap.message() == "x: 10 items, 5/s, 0:00:02 elapsed"


def test_log_to_prints_the_same_line_on_the_terminal(caplog):
    clock = FakeClock()
    logger = logging.getLogger("test-progress")
    p = Progress("UniqFileMeta", total=3, interval=1.0, clock=clock).log_to(logger)
    with caplog.at_level(logging.INFO, logger="test-progress"):
        p.update(3)
        final = p.finish()
    assert [r.getMessage() for r in caplog.records] == [final]
    assert "3/3 lines (100.0%)" in final


def test_heartbeat_reports_while_no_item_finishes():
    got = threading.Event()
    messages: list[str] = []

    def listen(message, _percent):
        messages.append(message)
        if "1/5" in message:
            got.set()

    with Progress("IngestShard 0/1", total=5, interval=0.05, listeners=[listen]) as p:
        p.update()  # one done, then a request that takes long
        # the update itself may have reported "1/5" (and a heartbeat from before it "0/5"):
        # forget that; a "1/5" from now on can only come from the heartbeat
        got.clear()
        assert got.wait(5.0), "the heartbeat never reported"
    assert messages[-1].startswith("done: ")  # leaving the block sends the final line


def test_updates_from_many_threads_are_all_counted():
    p = Progress("x", total=8000, interval=1000.0)

    def work():
        for _ in range(1000):
            p.update(status="success")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.snapshot().done == 8000
    assert p.snapshot().statuses == {"success": 8000}


def test_bad_interval_is_refused_and_durations_format():
    with pytest.raises(ValueError, match="interval"):
        Progress("x", interval=0)
    assert format_duration(3725.4) == "1:02:05"


def test_counting_counts_every_item_including_the_last_partial_batch():
    p = Progress("x", total=1000, interval=1000.0)
    items = [object() for _ in range(1000)]  # 3 full batches of 256 and a partial one
    assert list(counting(items, p)) == items
    assert p.done == 1000
    assert counting(items, None) is items  # no reporter: the items themselves
