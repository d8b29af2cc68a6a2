"""The Kafka sink: sandcrawler's topics, keyed by sha1hex, nothing left in the queue.

Why: the runbook's producer exited with "Producer terminating with 1 message
still in queue": a message was lost and nothing failed. Here every message
is produced with acks=all by an idempotent producer (no duplicates from
internal retries, no reordering), each delivery report is collected, and
`close()` returns only when every message was acknowledged by the broker;
any failed or unacknowledged message raises `SinkError`, so the shard fails
and writes no target. A rerun publishes the shard again: delivery is
at-least-once, and because keys are sha1hex, compacted topics keep one
message per file (docs/sinks.md).

Topics (docs/sinks.md): `sandcrawler-{env}.grobid-output-pg` (JSON),
`sandcrawler-{env}.pdf-text` (JSON, gzip-compressed by its own producer, as
compression is a producer setting), `sandcrawler-{env}.pdf-thumbnail-180px-jpg`
(raw JPEG). Messages up to 30 MB (`message.max.bytes`).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from pipeline.sinks.base import Sink, SinkError
from pipeline.sinks.message import GROBID, PDF_TEXT, THUMBNAIL, TOPICS, Message, topic_name

MESSAGE_MAX_BYTES = 30_000_000
MESSAGE_TIMEOUT_MS = 120_000
METADATA_TIMEOUT_S = 10.0
ERRORS_SHOWN = 5

log = logging.getLogger(__name__)


def producer_config(hosts: str, message_max_bytes: int, message_timeout_ms: int,
                    compression: str | None = None) -> dict:
    """librdkafka settings of one producer (delivery reports for every message, not only errors)."""
    config = {
        "bootstrap.servers": hosts,
        "acks": "all",
        "enable.idempotence": True,
        "message.max.bytes": message_max_bytes,
        "message.timeout.ms": message_timeout_ms,
        "linger.ms": 20,
        "logger": log,  # librdkafka's own log lines (disconnects, retries) through Python logging
    }
    if compression:
        config["compression.type"] = compression
    return config


class KafkaSink(Sink):
    """Publish to sandcrawler-{env}.* on `hosts`; `close()` flushes until every message is acked.

    `check_topics` (on by default) fails at once, naming the broker, when a
    topic is missing or the broker does not answer: before any PDF is sent to
    GROBID, not after the shard.
    """

    def __init__(self, hosts: str, env: str, message_max_bytes: int = MESSAGE_MAX_BYTES,
                 message_timeout_ms: int = MESSAGE_TIMEOUT_MS, check_topics: bool = True,
                 metadata_timeout: float = METADATA_TIMEOUT_S):
        super().__init__()
        if not hosts:
            raise ValueError("KafkaSink needs bootstrap servers ([kafka] hosts)")
        self.hosts = hosts
        self.env = env
        self.topics = {kind: topic_name(kind, env) for kind in TOPICS}
        self.message_timeout_ms = message_timeout_ms
        # librdkafka is loaded with the first Kafka sink: a run with file sinks never needs it
        from confluent_kafka import KafkaException, Producer

        self._refused = KafkaException
        plain = Producer(producer_config(hosts, message_max_bytes, message_timeout_ms))
        gzip = Producer(producer_config(hosts, message_max_bytes, message_timeout_ms, "gzip"))
        self._producers = {GROBID: plain, THUMBNAIL: plain, PDF_TEXT: gzip}
        self._lock = threading.Lock()  # delivery reports arrive on whichever thread polls
        self.errors: list[str] = []
        self.acked: dict[str, int] = {kind: 0 for kind in TOPICS}
        if check_topics:
            self._check_topics(metadata_timeout)

    def _check_topics(self, timeout: float) -> None:
        try:
            meta = self._producers[GROBID].list_topics(timeout=timeout)
        except self._refused as e:
            raise SinkError(f"Kafka broker {self.hosts} did not answer within {timeout:g} s ({e}); "
                            "start it or fix [kafka] hosts (empty: file sinks)") from e
        missing = [t for t in self.topics.values() if t not in meta.topics]
        if missing:
            raise SinkError(f"Kafka broker {self.hosts} has no topic {', '.join(missing)}: create "
                            f"the sandcrawler-{self.env}.* topics or fix [kafka] env")

    def _report(self, kind: str, key: str):
        def on_delivery(err, msg) -> None:
            with self._lock:
                if err is not None:
                    self.errors.append(f"{self.topics[kind]} key {key}: {err.str()}")
                else:
                    self.acked[kind] += 1
        return on_delivery

    def _send(self, message: Message) -> None:
        self.raise_if_failed()
        value = message.value if isinstance(message.value, bytes) else json.dumps(
            message.value, sort_keys=True).encode("utf-8")
        producer = self._producers[message.kind]
        topic = self.topics[message.kind]
        while True:
            try:
                producer.produce(topic, value=value, key=message.key.encode("ascii"),
                                 on_delivery=self._report(message.kind, message.key))
                break
            except BufferError:  # local queue full: serve delivery reports, then try again
                producer.poll(0.5)
            except self._refused as e:  # refused before sending (too large, unknown topic...)
                raise SinkError(f"{topic} key {message.key} ({len(value)} bytes) refused: "
                                f"{e.args[0].str() if e.args else e}") from e
        producer.poll(0)

    def raise_if_failed(self) -> None:
        """Raise `SinkError` as soon as any delivery has failed (the shard stops early)."""
        with self._lock:
            if self.errors:
                raise SinkError(self._describe_errors())

    def _describe_errors(self) -> str:
        shown = "; ".join(self.errors[:ERRORS_SHOWN])
        more = f" (and {len(self.errors) - ERRORS_SHOWN} more)" if len(self.errors) > ERRORS_SHOWN else ""
        return f"{len(self.errors)} Kafka deliveries to {self.hosts} failed: {shown}{more}"

    def _close(self) -> dict:
        """Wait until every message is acknowledged; raise `SinkError` on any failure or leftover."""
        deadline = time.monotonic() + self.message_timeout_ms / 1000 + 10
        for producer in {id(p): p for p in self._producers.values()}.values():
            while len(producer) and time.monotonic() < deadline:
                producer.flush(1.0)
        left = sum(len(p) for p in {id(p): p for p in self._producers.values()}.values())
        self.raise_if_failed()
        unacked = {self.topics[k]: self.counts[k] - self.acked[k] for k in TOPICS
                   if self.counts[k] != self.acked[k]}
        if left or unacked:
            problem = (f"Kafka broker {self.hosts}: {left} messages still in queue after "
                       f"{self.message_timeout_ms / 1000:g} s, unacknowledged per topic: {unacked}")
            with self._lock:
                self.errors.append(problem)  # the sink stays failed: a later publish raises too
            raise SinkError(problem)
        return {self.topics[k]: self.acked[k] for k in TOPICS}

    def abort(self) -> None:
        """Drop what is still queued (the shard failed; its rerun publishes everything again)."""
        for producer in {id(p): p for p in self._producers.values()}.values():
            producer.purge()
            producer.flush(0)
