"""Bounded retries with exponential backoff: the one retry loop of every HTTP client.

Wayback services, WARC stores and the fatcat API fail transiently (5xx,
resets). One policy object, injected into each client, keeps tests fast (a
tiny backoff) and production patient, and every client retries the same way:
a connection error, a timeout (an answer not complete within its total
deadline too: `pipeline.httpdeadline.DeadlineExceeded` is a `requests.Timeout`)
or a status the caller names is tried again after
`backoff * 2**n` seconds, at most `retries` more times. A 429 or 503 whose
`Retry-After` (seconds or an HTTP-date) asks for longer is waited that long,
up to `max_retry_after` seconds: the service said when it can answer, and
asking sooner only spends an attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from email.utils import parsedate_to_datetime

import requests

# statuses whose Retry-After is a promise of when to ask again (RFC 9110 10.2.3)
RETRY_AFTER_STATUSES = (429, 503)
MAX_RETRY_AFTER = 60.0


def retry_after(response: requests.Response) -> float | None:
    """Seconds a 429 or 503 asks the client to wait (`Retry-After`), None when it does not say."""
    if response.status_code not in RETRY_AFTER_STATUSES:
        return None
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class Retrying:
    """Bounded retries with exponential backoff, for transient service failures."""

    def __init__(self, retries: int = 3, backoff: float = 0.5,
                 max_retry_after: float = MAX_RETRY_AFTER):
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 0)."""
        return self.backoff * (2 ** attempt)

    def sleep(self, attempt: int, asked: float | None = None) -> None:
        """Wait before the next attempt: the backoff, or longer when the service asked
        (`Retry-After`, capped at `max_retry_after`)."""
        wait = self.delay(attempt)
        if asked is not None:
            wait = max(wait, min(asked, self.max_retry_after))
        time.sleep(wait)

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
            asked = None
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
                asked = retry_after(response)
                response.close()
            if on_retry is not None:
                on_retry(attempt + 1, why)
            self.sleep(attempt, asked)
        raise AssertionError("unreachable")
