"""A token bucket: at most so many archive calls a second from one worker process.

Why its own module: the rate limit is shared by every thread and client of one
archive (one bucket per worker process) and knows nothing of retries; the retry
policy (`pipeline.httpretry.Retrying`) only takes a token before each attempt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
