"""What every sink does: publish each (topic, sha1hex) once, count, and fail loudly.

Why: a shard is complete only when every message it produced is safely
stored (docs/sinks.md; the runbook lost messages on exit). A sink therefore has two
ways to end: `close()`, which returns only when every message is stored and
raises `SinkError` otherwise, and `abort()`, which drops what is not stored.
Two requests of a shard can end on the same PDF; its messages are published
once per shard (keyed by sha1hex, a later copy would say the same).
"""

from __future__ import annotations

import collections

from pipeline.errors import OperatorError
from pipeline.sinks.message import GROBID, TOPICS, Message, take


class SinkError(OperatorError):
    """A message could not be stored (delivery failed, not acknowledged, too large...)."""


class Sink:
    """Base of the sinks: dedupe by (topic, key) and per-topic counts; subclasses `_send`."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self.counts: collections.Counter = collections.Counter({kind: 0 for kind in TOPICS})
        self.published: dict[str, int] = {}  # set by close(): messages stored per topic name
        # GROBID's answers as published: the run report's GROBID section reads them from the
        # shard's sidecar (a Kafka topic cannot be read back cheaply)
        self.grobid_status: collections.Counter = collections.Counter()
        self.grobid_error_codes: collections.Counter = collections.Counter()

    def publish(self, message: Message) -> None:
        ident = (message.kind, message.key)
        if ident in self._seen:
            return
        self._seen.add(ident)
        self._send(message)
        self.counts[message.kind] += 1
        if message.kind == GROBID and isinstance(message.value, dict):
            status = str(message.value.get("status"))
            self.grobid_status[status] += 1
            if status != "success":
                self.grobid_error_codes[str(message.value.get("status_code"))] += 1

    def grobid_counts(self) -> dict:
        """For a sidecar: GROBID statuses published, and the status codes of the errors."""
        return {"grobid": dict(sorted(self.grobid_status.items())),
                "grobid_error_codes": dict(sorted(self.grobid_error_codes.items()))}

    def publish_result(self, result: dict) -> None:
        """Publish the messages post-processors queued on `result` (and remove them from it)."""
        for message in take(result):
            self.publish(message)

    def _send(self, message: Message) -> None:
        raise NotImplementedError

    def close(self) -> dict:
        """Store everything or raise `SinkError`; returns (and keeps) messages per topic name."""
        self.published = self._close()
        return self.published

    def _close(self) -> dict:
        raise NotImplementedError

    def abort(self) -> None:
        """Give up: nothing more is stored (partial files removed)."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
