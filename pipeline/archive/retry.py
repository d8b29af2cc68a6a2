"""Bounded retries with backoff, shared by every HTTP client of the archive layer.

Wayback services and WARC stores fail transiently (5xx, resets); one retry
policy, injected, keeps tests fast (tiny backoff) and production patient.
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

    def sleep(self, attempt: int) -> None:
        time.sleep(self.backoff * (2 ** attempt))

    def send(self, send: Callable[[], requests.Response], retry_statuses: Container[int],
             unreachable: Callable[[requests.RequestException], Exception]) -> requests.Response:
        """The first answer of `send()` whose status is not in `retry_statuses`, else the last.

        A retried answer is closed. When the last attempt cannot connect,
        raises `unreachable(exc)`, chained to the connection error.
        """
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = send()
            except requests.RequestException as exc:
                if last:
                    raise unreachable(exc) from exc
            else:
                if response.status_code not in retry_statuses or last:
                    return response
                response.close()
            self.sleep(attempt)
        raise AssertionError("unreachable")
