"""Bounded retries with exponential backoff: the one retry loop of every HTTP client.

Wayback services, WARC stores and the fatcat API fail transiently (5xx,
resets). One policy object, injected into each client, keeps tests fast (a
tiny backoff) and production patient, and every client retries the same way:
a connection error, a timeout (an answer not complete within its total
deadline too: `pipeline.httpdeadline.DeadlineExceeded` is a `requests.Timeout`)
or a status the caller names is tried again after
`backoff * 2**n` seconds, at most `retries` more times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container

import requests


class Retrying:
    """Bounded retries with exponential backoff, for transient service failures."""

    def __init__(self, retries: int = 3, backoff: float = 0.5):
        self.retries = retries
        self.backoff = backoff

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 0)."""
        return self.backoff * (2 ** attempt)

    def sleep(self, attempt: int) -> None:
        time.sleep(self.delay(attempt))

    def send(self, send: Callable[[], requests.Response], retry_statuses: Container[int],
             unreachable: Callable[[requests.RequestException], Exception]) -> requests.Response:
        """The first answer of `send()` whose status is not in `retry_statuses`, else the last.

        A retried answer is closed. When the last attempt cannot connect,
        raises `unreachable(exc)`, chained to the connection error.
        """
        return self.send_counted(send, retry_statuses, unreachable)[0]

    def send_counted(self, send: Callable[[], requests.Response], retry_statuses: Container[int],
                     unreachable: Callable[[requests.RequestException], Exception],
                     on_retry: Callable[[int, str], None] | None = None,
                     ) -> tuple[requests.Response, int]:
        """`send` with the number of attempts it took (a write may have been applied by an
        attempt whose answer was lost). `on_retry(attempt, why)` is told of each retry."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = send()
            except requests.RequestException as exc:
                if last:
                    raise unreachable(exc) from exc
                why = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in retry_statuses or last:
                    return response, attempt + 1
                why = (f"HTTP {response.status_code}: {response.text[:300]}"
                       if on_retry is not None else "")
                response.close()
            if on_retry is not None:
                on_retry(attempt + 1, why)
            self.sleep(attempt)
        raise AssertionError("unreachable")
