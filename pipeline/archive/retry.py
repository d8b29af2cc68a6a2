"""Bounded retries with backoff, shared by every HTTP client of the archive layer.

Wayback services and WARC stores fail transiently (5xx, resets); one retry
policy, injected, keeps tests fast (tiny backoff) and production patient.
"""

from __future__ import annotations

import time


class Retrying:
    """Bounded retries with exponential backoff, for transient service failures."""

    def __init__(self, retries: int = 3, backoff: float = 0.5):
        self.retries = retries
        self.backoff = backoff

    def sleep(self, attempt: int) -> None:
        time.sleep(self.backoff * (2 ** attempt))
