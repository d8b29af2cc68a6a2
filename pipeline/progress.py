"""Progress of a long step: counts, rate, ETA and the status histogram so far.

Why: a shard of 20,000 requests runs for hours; without progress it is a grey
box in the scheduler's visualiser and a silent terminal. The runbook watched
`pv -l` (lines, rate) and printed `Counter({...})` lines; this class gives the
same figures to whoever listens, every few seconds: the Luigi task passes its
`set_progress_percentage`/`set_status_message`, and `log_to(logger)` prints
the same line on the terminal. It knows nothing about Luigi.

Reports are driven by `update()` (at most one per `interval` seconds) and,
inside `with progress:`, also by a heartbeat thread, so a step stuck on one
slow request still says so. `finish()` sends the final counts, which stay in
the status message.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

INTERVAL = 5.0  # seconds between reports (`[backfill] progress_seconds`)

# A listener gets the message and the percentage done (None when the total is unknown).
Listener = Callable[[str, "float | None"], Any]


@dataclass(frozen=True)
class Snapshot:
    """The figures of one report."""

    label: str
    done: int
    total: int | None
    elapsed: float
    statuses: dict[str, int] = field(default_factory=dict)
    final: bool = False
    unit: str = "items"
    notes: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def percent(self) -> float | None:
        if not self.total:
            return 100.0 if self.final else None
        return min(100.0, 100.0 * self.done / self.total)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None: unknown total or no rate yet)."""
        if self.final:
            return 0.0
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def message(self) -> str:
        """One line, like `pv -l` plus the runbook's Counter line."""
        head = f"{self.label}: {self.done:,}"
        if self.total is not None:
            head += f"/{self.total:,}"
        head += f" {self.unit}"
        if self.percent is not None and self.total is not None:
            head += f" ({self.percent:.1f}%)"
        head += f", {self.rate:,.0f}/s, {format_duration(self.elapsed)} elapsed"
        if self.final:
            head = "done: " + head
        elif self.eta is not None:
            head += f", ETA {format_duration(self.eta)}"
        if self.statuses:
            ordered = sorted(self.statuses.items(), key=lambda kv: (-kv[1], kv[0]))
            head += " | Counter({" + ", ".join(f"'{k}': {v}" for k, v in ordered) + "})"
        for note in self.notes:
            head += f" | {note}"
        return head


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Counts processed items of one step and reports them every `interval` seconds.

    Thread-safe: the ingest runs requests concurrently and any thread may call
    `update()`. Listeners are called outside the lock, one report at a time.
    """

    def __init__(self, label: str, total: int | None = None, *, unit: str = "lines",
                 interval: float = INTERVAL, listeners: list[Listener] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError(f"progress interval must be > 0 seconds, got {interval}")
        self.label = label
        self.total = total
        self.unit = unit
        self.interval = interval
        self.listeners: list[Listener] = list(listeners or [])
        self._clock = clock
        self._started = clock()
        self._last_report = self._started
        self._done = 0
        self._statuses: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reports = 0
        self.last_message = ""
        # what the step is waiting for, asked at each report (e.g. an archive that is down)
        self.notes: list[Callable[[], str | None]] = []

    # -- counting ----------------------------------------------------------
    def update(self, n: int = 1, status: str | None = None) -> None:
        """Count `n` more items (with their status, when they have one); report when due.

        Inside `with progress:` the heartbeat thread does the reporting and
        this only counts (cheap enough to call once per line of a big file).
        """
        with self._lock:
            self._done += n
            if status is not None:
                self._statuses[status] += n
            if self._thread is not None:
                return
            due = self._claim_report()
        if due:
            self._emit(final=False)

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def log_to(self, logger: logging.Logger, level: int = logging.INFO) -> Progress:
        """Also print every report on `logger` (the terminal)."""
        self.listeners.append(lambda message, _percent: logger.log(level, "%s", message))
        return self

    def add_note(self, note: Callable[[], str | None]) -> None:
        """`note()` is asked at each report; its text (when not None) ends the message."""
        self.notes.append(note)

    def snapshot(self, final: bool = False) -> Snapshot:
        notes = () if final else tuple(n for n in (note() for note in self.notes) if n)
        with self._lock:
            return Snapshot(self.label, self._done, self.total, self._clock() - self._started,
                            dict(self._statuses), final, self.unit, notes)

    @property
    def done(self) -> int:
        return self._done

    # -- reporting ---------------------------------------------------------
    def _emit(self, final: bool) -> None:
        snap = self.snapshot(final)
        message = snap.message()
        with self._report_lock:
            self.reports += 1
            self.last_message = message
            for listener in self.listeners:
                listener(message, snap.percent)

    def finish(self) -> str:
        """Send the final counts (100%) and stop the heartbeat; returns the final message."""
        self._stop_heartbeat()
        self._emit(final=True)
        return self.last_message

    # -- heartbeat ---------------------------------------------------------
    def __enter__(self) -> Progress:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"progress {self.label}",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self._stop_heartbeat()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval / 2):
            with self._lock:
                due = self._claim_report()
            if due:
                self._emit(final=False)

    def _claim_report(self) -> bool:
        """Whether a report is due now; if so, the caller sends it (call with the lock held)."""
        now = self._clock()
        if now - self._last_report < self.interval:
            return False
        self._last_report = now
        return True

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None


def counting(items: Iterable[T], progress: Progress | None) -> Iterable[T]:
    """`items`, each one counted on `progress` as it is taken (`items` itself when None).

    Why: a step's plain function wraps the loop over its main input with this
    and stays unaware of who listens; without a reporter it costs nothing.
    """
    if progress is None:
        return items
    return _counted(items, progress)


def _counted(items: Iterable[T], progress: Progress, batch: int = 256) -> Iterator[T]:
    # counted in batches: a locked update per line would cost a big file seconds
    n = 0
    for item in items:
        yield item
        n += 1
        if n == batch:
            progress.update(n)
            n = 0
    if n:
        progress.update(n)
