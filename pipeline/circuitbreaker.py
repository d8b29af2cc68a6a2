"""A circuit breaker per archive: while it does not answer, no request starts.

Why its own module: the breaker is shared by every thread and client of one
archive (one per worker process) and decides only whether the archive is
answering; the retry policy (`pipeline.httpretry.Retrying`) asks it before each
attempt and tells it how each attempt went. After `failures` consecutive
failed attempts (no answer, 5xx, 429) no request starts; one thread at a time
probes the archive with a backoff of its own, and when it answers every
waiting request goes on. An outage longer than `outage_seconds` raises
`ArchiveUnavailable` (a `StepFailed`: the shard stops and publishes nothing).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from pipeline.checks import StepFailed

log = logging.getLogger(__name__)

# The defaults, written once (pipeline.config reads them for `[ingest]` through pipeline.httpretry).
BREAKER_FAILURES = 5
PROBE_SECONDS = 2.0
PROBE_MAX_SECONDS = 60.0
OUTAGE_SECONDS = 600.0


class ArchiveUnavailable(StepFailed):
    """The archive did not answer for longer than the outage allowance: the shard stops."""


def _clock_time(wall: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(wall))


class CircuitBreaker:
    """Whether an archive is answering, shared by every thread and client that uses it.

    `probe()` asks the archive something cheap and says whether it answered
    (any answer but 5xx/429). `gate()` is called before each attempt: it
    returns at once while the breaker is closed, and while it is open blocks
    every caller, one of which probes whenever a probe is due.
    """

    def __init__(self, name: str, probe: Callable[[], bool], *, failures: int = BREAKER_FAILURES,
                 probe_seconds: float = PROBE_SECONDS, probe_max_seconds: float = PROBE_MAX_SECONDS,
                 outage_seconds: float = OUTAGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        if failures < 1:
            raise ValueError(f"breaker failures must be >= 1, got {failures}")
        if probe_seconds <= 0 or probe_max_seconds < probe_seconds or outage_seconds <= 0:
            raise ValueError("probe_seconds must be > 0 and <= probe_max_seconds, "
                             "outage_seconds > 0")
        self.name = name
        self.probe = probe
        self.failures = failures
        self.probe_seconds = probe_seconds
        self.probe_max_seconds = probe_max_seconds
        self.outage_seconds = outage_seconds
        self._clock = clock
        self._wall = wall
        self._cond = threading.Condition()
        self.consecutive = 0
        self.successes = 0  # answers seen: a request's failures are its own if this moved
        self.opened_at: float | None = None  # monotonic; None: closed
        self.last_opened_at: float | None = None  # kept once closed: when the last outage began
        self.opened_wall = 0.0
        self.outages = 0
        self.probes = 0
        self._interval = probe_seconds
        self._next_probe = 0.0
        self._probing = False
        self._resume_at = 0.0  # a Retry-After: nobody starts before it
        self._failed: ArchiveUnavailable | None = None
        self._confirmed = False  # a probe of the latest outage failed
        # outages a failed probe confirmed (the breaker also opens on a run of requests that
        # fail on their own, e.g. damaged records answered 503; the first probe closes those)
        self.confirmed_outages = 0
        self.confirmed_opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def gate(self) -> bool:
        """Wait until a request may start; True when it waited for an outage that a failed
        probe confirmed (the archive itself did not answer, not just some requests failing).

        Raises ArchiveUnavailable once the outage outlasted `outage_seconds`."""
        waited = False
        while True:
            go, was_open = self._wait_or_claim_probe()
            waited = waited or was_open
            if go:
                return waited and self._confirmed
            self._run_probe()

    def _wait_or_claim_probe(self) -> tuple[bool, bool]:
        """(go on, the breaker was open): not going on means this thread probes now."""
        was_open = False
        with self._cond:
            while True:
                if self._failed is not None:
                    raise self._failed
                now = self._clock()
                if self.opened_at is None:
                    if now >= self._resume_at:
                        return True, was_open
                    self._cond.wait(self._resume_at - now)
                    continue
                was_open = True
                if not self._probing and now >= self._next_probe:
                    self._probing = True
                    return False, True
                self._cond.wait(None if self._probing else max(0.001, self._next_probe - now))

    def _run_probe(self) -> None:
        try:
            answered = bool(self.probe())
        except Exception:  # noqa: BLE001 - a probe that cannot even ask is a failed probe
            log.debug("probe of %s raised", self.name, exc_info=True)
            answered = False
        with self._cond:
            self._probing = False
            self.probes += 1
            now = self._clock()
            if answered:
                self._close(now)
            elif self.opened_at is not None:
                down = now - self.opened_at
                if down >= self.outage_seconds:
                    self._failed = ArchiveUnavailable(
                        f"archive {self.name} unavailable since {_clock_time(self.opened_wall)} "
                        f"({down:.0f} s, past [ingest] outage_seconds {self.outage_seconds:g}); "
                        "this step wrote no target: rerun it when the archive answers")
                    log.error("%s", self._failed)
                else:
                    if not self._confirmed:  # the archive itself is down: a real outage
                        self.confirmed_outages += 1
                        self.confirmed_opened_at = self.opened_at
                    self._confirmed = True
                    self._interval = min(self._interval * 2, self.probe_max_seconds)
                    self._next_probe = min(now + self._interval * random.uniform(0.8, 1.0),
                                           self.opened_at + self.outage_seconds)
            self._cond.notify_all()

    def _close(self, now: float) -> None:
        self.successes += 1
        self.consecutive = 0
        if self.opened_at is not None:
            log.warning("archive %s answers again after %.0f s: going on", self.name,
                        now - self.opened_at)
            self.opened_at = None
            self._cond.notify_all()

    def started(self) -> float:
        """When an attempt starts, on the breaker's clock (give it back to `record`)."""
        return self._clock()

    def record(self, answered: bool, retry_after: float | None = None,
               started: float | None = None) -> None:
        """Count one attempt: `answered` (any answer but 5xx/429), else a failure; a
        `retry_after` (from a 429/503) holds every request back until it has passed.

        An answer to an attempt that started before the breaker opened does not
        close it: that call was on its way before the outage (or the answer was
        cached upstream), which says nothing of the archive now; only a probe or
        a call started since may close it.
        """
        with self._cond:
            now = self._clock()
            if retry_after:
                self._resume_at = max(self._resume_at, now + retry_after)
                self._next_probe = max(self._next_probe, self._resume_at)
            if answered:
                if self.opened_at is not None and started is not None and started < self.opened_at:
                    self.successes += 1
                    return
                self._close(now)
                return
            self.consecutive += 1
            if self.opened_at is None and self.consecutive >= self.failures:
                self.opened_at = self.last_opened_at = now
                self.opened_wall = self._wall()
                self._confirmed = False
                self.outages += 1
                self._interval = self.probe_seconds
                self._next_probe = max(now + self.probe_seconds, self._resume_at)
                log.warning("archive %s: %d failed calls in a row; no request starts until it "
                            "answers (probing from %g s on, giving up after %g s)", self.name,
                            self.consecutive, self.probe_seconds, self.outage_seconds)

    def note(self) -> str | None:
        """`archive unavailable since HH:MM, next try in N s` while open (the status message)."""
        with self._cond:
            if self.opened_at is None:
                return None
            wait = max(0.0, self._next_probe - self._clock())
            return (f"archive unavailable since {time.strftime('%H:%M', time.gmtime(self.opened_wall))}"
                    f", next try in {wait:.0f} s")
