"""One retry policy for every HTTP client: backoff with jitter, Retry-After, a rate limit and
a circuit breaker per archive.

Why: a production wayback answers in 50-500 ms, says 429 with `Retry-After`
when pushed, has 5xx bursts and outages of minutes. One policy object,
injected into each client, keeps tests fast (tiny waits) and production
patient, and every client retries the same way: a connection error, a
timeout (an answer not complete within its total deadline too:
`pipeline.httpdeadline.DeadlineExceeded` is a `requests.Timeout`) or a
status the caller names is tried again, at most `retries` more times.

The arithmetic is urllib3's `Retry` (exponential backoff with jitter and a
cap, `Retry-After` in seconds or as an HTTP-date, capped at
`retry_after_max`). It is not mounted on the transport adapter, because there
one `pipeline.httpdeadline` deadline would span all of urllib3's attempts and
urllib3 would never see the deadline's timeout; here each attempt is one
`complete()` with a deadline of its own.

Two optional parts, shared by every client of one archive (one policy object
per worker process, whatever the number of threads):

- `TokenBucket`: at most `rate` requests a second are started (each attempt
  takes a token; the bucket holds one, so no burst above the rate);
- `CircuitBreaker`: after `failures` consecutive failed attempts (no answer,
  5xx, 429) no request starts; one thread at a time probes the archive with
  a backoff of its own, and when it answers every waiting request goes on
  with a fresh retry budget, so a request never takes its status from the
  outage. An outage longer than `outage_seconds` raises `ArchiveUnavailable`
  (a `StepFailed`: the shard stops and publishes nothing).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Container

import requests
from urllib3.util.retry import Retry

from pipeline.checks import StepFailed

log = logging.getLogger(__name__)

# The defaults, written once (pipeline.config reads them for `[ingest]`).
RETRIES = 3
BACKOFF = 0.5
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 300.0
BREAKER_FAILURES = 5
PROBE_SECONDS = 2.0
PROBE_MAX_SECONDS = 60.0
OUTAGE_SECONDS = 600.0
RETRY_PASS_RETRIES = 8  # IngestRetry's: it asks again for what the first pass lost

# Answers that say "the service is failing or pushed too hard", not "no such thing".
OVERLOAD_STATUSES = frozenset((429, 500, 502, 503, 504))
# Answers whose `Retry-After` says when to ask again.
RETRY_AFTER_STATUSES = frozenset((429, 503))


class ArchiveUnavailable(StepFailed):
    """The archive did not answer for longer than the outage allowance: the shard stops."""


class TokenBucket:
    """At most `rate` grants a second, `burst` of them at once, for every thread of a process.

    Each `take()` reserves the next free slot under the lock and sleeps until
    it outside it, so grants are spaced by 1/rate exactly: in any window of
    T seconds at most `burst + rate * T` are granted (a count bound, not a
    hope about timing).
    """

    def __init__(self, rate: float, burst: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests a second, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = burst
        self._last = clock()

    def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1  # below zero: a reservation, paid for by waiting
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


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


class Retrying:
    """Bounded retries with exponential backoff and jitter, for transient service failures.

    `limiter` and `breaker` (optional) are shared by every client of one
    archive. Without a breaker a request gives up after `retries` retries;
    with one, it gives up only when the archive answered other calls since
    its first failure (its failure is its own), and starts a fresh budget
    after an outage that a failed probe confirmed.
    """

    def __init__(self, retries: int = RETRIES, backoff: float = BACKOFF, *,
                 backoff_max: float = BACKOFF_MAX, jitter: float | None = None,
                 retry_after_max: float = RETRY_AFTER_MAX, limiter: TokenBucket | None = None,
                 breaker: CircuitBreaker | None = None,
                 sleep: Callable[[float], None] | None = None):
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.retries = retries
        self.backoff = backoff
        self.limiter = limiter
        self.breaker = breaker
        self.retry_after_max = retry_after_max
        # looked up when called, so a test that patches `time.sleep` sees every wait
        self._sleep = sleep if sleep is not None else (lambda seconds: time.sleep(seconds))
        # urllib3 waits 0 s before the first retry and factor * 2**(n-1) after n failures;
        # with half the factor and one failure of history more, this is backoff * 2**n
        self._policy = Retry(total=None, backoff_factor=backoff / 2, backoff_max=backoff_max,
                             backoff_jitter=backoff if jitter is None else jitter,
                             retry_after_max=retry_after_max)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 0), jitter included."""
        policy = self._policy
        for _ in range(attempt + 2):
            policy = policy.increment()
        return policy.get_backoff_time()

    def retry_after(self, response: requests.Response) -> float | None:
        """The answer's `Retry-After` in seconds (capped at `retry_after_max`), None if absent
        or unreadable."""
        if response.status_code not in RETRY_AFTER_STATUSES:
            return None  # only a 429 or a 503 promises a time (RFC 6585, RFC 9110 10.2.3)
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return self._policy.parse_retry_after(value)
        except Exception:  # noqa: BLE001 - an unreadable header is no promise: back off instead
            return None

    def sleep(self, attempt: int) -> None:
        self._sleep(self.delay(attempt))

    def send(self, send: Callable[[], requests.Response], retry_statuses: Container[int],
             unreachable: Callable[[requests.RequestException], Exception],
             transient: Callable[[requests.Response], bool] | None = None) -> requests.Response:
        """The first answer of `send()` whose status is not in `retry_statuses`, else the last.

        `transient(response)`, when given, decides instead of `retry_statuses`
        (a replayed capture may carry an archived 503). A retried answer is
        closed. When the last attempt cannot connect, raises `unreachable(exc)`,
        chained to the connection error.
        """
        return self.send_counted(send, retry_statuses, unreachable, transient=transient)[0]

    def send_counted(self, send: Callable[[], requests.Response], retry_statuses: Container[int],
                     unreachable: Callable[[requests.RequestException], Exception],
                     on_retry: Callable[[int, str], None] | None = None,
                     transient: Callable[[requests.Response], bool] | None = None,
                     ) -> tuple[requests.Response, int]:
        """`send` with the number of attempts it took (a write may have been applied by an
        attempt whose answer was lost). `on_retry(attempt, why)` is told of each retry."""
        breaker = self.breaker
        attempts = 0
        failed = 0  # failed attempts since the budget was last renewed
        answered_before = None  # the breaker's answers count at this request's first failure
        while True:
            if breaker is not None and breaker.gate():
                failed = 0  # an outage passed: its failures do not count against the request
            if self.limiter is not None:
                self.limiter.take()
            attempts += 1
            retry_after = None
            started = breaker.started() if breaker is not None else None
            try:
                response = send()
            except requests.RequestException as exc:
                error: requests.RequestException | None = exc
                response = None
                overload = True
            else:
                error = None
                retry = (transient(response) if transient is not None
                         else response.status_code in retry_statuses)
                overload = retry and response.status_code in OVERLOAD_STATUSES
                if overload:
                    retry_after = self.retry_after(response)
                if not retry:
                    if breaker is not None:
                        breaker.record(True, started=started)
                    return response, attempts
            if breaker is not None:
                breaker.record(not overload, retry_after, started)
                if answered_before is None:
                    answered_before = breaker.successes
            failed += 1
            if failed > self.retries and self._gives_up(overload, answered_before):
                if error is not None:
                    raise unreachable(error) from error
                return response, attempts
            why = ""
            if error is not None:
                why = f"{type(error).__name__}: {error}"
            elif on_retry is not None:
                why = f"HTTP {response.status_code}: {response.text[:300]}"
            if response is not None:
                response.close()
            if on_retry is not None:
                on_retry(attempts, why)
            wait = self.delay(min(failed, self.retries + 1) - 1)
            self._sleep(max(wait, retry_after or 0.0))

    def _gives_up(self, overload: bool, answered_before: int | None) -> bool:
        """Out of retries: give up, unless a breaker watches and nothing has answered since this
        request first failed (then the archive may be down: go on until the breaker decides)."""
        if self.breaker is None or not overload or answered_before is None:
            return True
        return self.breaker.successes > answered_before

