"""One retry policy for every HTTP client: backoff with jitter, Retry-After, and the archive's
rate limit and circuit breaker when given.

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
per worker process, whatever the number of threads), each in a module of its
own: `pipeline.ratelimit.TokenBucket` (each attempt takes a token) and
`pipeline.circuitbreaker.CircuitBreaker` (no attempt starts while the archive
is down; a request never takes its status from the outage). `Retrying` is the
clients' one interface to all three.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from typing import TYPE_CHECKING

import requests
from urllib3.util.retry import Retry

# the breaker's defaults are settings of this policy too (pipeline.config reads them here)
from pipeline.circuitbreaker import BREAKER_FAILURES as BREAKER_FAILURES
from pipeline.circuitbreaker import OUTAGE_SECONDS as OUTAGE_SECONDS
from pipeline.circuitbreaker import PROBE_MAX_SECONDS as PROBE_MAX_SECONDS
from pipeline.circuitbreaker import PROBE_SECONDS as PROBE_SECONDS

if TYPE_CHECKING:
    from pipeline.circuitbreaker import CircuitBreaker
    from pipeline.ratelimit import TokenBucket

# The defaults, written once (pipeline.config reads them for `[ingest]`).
RETRIES = 3
BACKOFF = 0.5
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 300.0
RETRY_PASS_RETRIES = 8  # IngestRetry's: it asks again for what the first pass lost

# Answers that say "the service is failing or pushed too hard", not "no such thing".
OVERLOAD_STATUSES = frozenset((429, 500, 502, 503, 504))
# Answers whose `Retry-After` says when to ask again.
RETRY_AFTER_STATUSES = frozenset((429, 503))


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

