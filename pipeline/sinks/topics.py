"""The run's Kafka topics as sandcrawler sets them up, created or checked on a broker.

Why: the shards refuse to start when a topic is missing (the pipeline never
creates topics as a side effect of a run), so an operator needs one command
that makes them right: sandcrawler's names, partitions (12 each, as its
kafka/topics.md has them), key compaction (every key is a sha1hex, so a
compacted topic keeps one message per PDF and a rerun's duplicates go away),
gzip on the topics sandcrawler gzips, and a message size limit that lets
through every message the producer may send (`[kafka] message_max_bytes`).
Idempotent: a topic that exists with these settings is left alone; one that
exists with other settings is reported, never altered (changing partitions
moves keys; that is the operator's decision).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pipeline.sinks.message import GROBID, PDF_TEXT, THUMBNAIL, topic_name

PARTITIONS = 12  # sandcrawler's, for each of the three topics
ADMIN_TIMEOUT_S = 15.0
BROKER_DEFAULT_REPLICATION = -1  # let the broker's default.replication.factor decide

# broker-side compression, as sandcrawler's topics have it (thumbnails: the producer's, none)
_COMPRESSION = {GROBID: "gzip", PDF_TEXT: "gzip", THUMBNAIL: None}


log = logging.getLogger(__name__)


class TopicsError(Exception):
    """The broker could not be asked (unreachable, or refused an admin request)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


@dataclass
class TopicOutcome:
    """What happened to one topic: `created`, `exists` (settings match) or `mismatch`."""

    spec: TopicSpec
    state: str
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        settings = " ".join([f"partitions={self.spec.partitions}",
                             *(f"{k}={v}" for k, v in sorted(self.spec.config.items()))])
        if self.state == "mismatch":
            return f"mismatch {self.spec.name}: {'; '.join(self.problems)}"
        return f"{self.state:8} {self.spec.name} {settings}"


def topic_specs(env: str, message_max_bytes: int) -> list[TopicSpec]:
    """The three topics of a run with `[kafka] env` = `env`."""
    specs = []
    for kind in (GROBID, PDF_TEXT, THUMBNAIL):
        config = {"cleanup.policy": "compact", "max.message.bytes": str(message_max_bytes)}
        if _COMPRESSION[kind]:
            config["compression.type"] = _COMPRESSION[kind]
        specs.append(TopicSpec(topic_name(kind, env), PARTITIONS, config))
    return specs


def ensure_topics(hosts: str, specs: list[TopicSpec], replication_factor: int = BROKER_DEFAULT_REPLICATION,
                  timeout: float = ADMIN_TIMEOUT_S) -> list[TopicOutcome]:
    """Create the missing topics; check the existing ones' partitions and settings."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

    # librdkafka's own log lines (a broker closing an idle admin connection) through logging
    admin = AdminClient({"bootstrap.servers": hosts, "logger": log})
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as e:
        raise TopicsError(f"Kafka broker {hosts} did not answer within {timeout:g} s ({e})") from e
    outcomes = {s.name: TopicOutcome(s, "exists") for s in specs}
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, num_partitions=s.partitions, replication_factor=replication_factor,
                      config=s.config) for s in missing], request_timeout=timeout)
        for spec in missing:
            try:
                futures[spec.name].result(timeout=timeout)
                outcomes[spec.name].state = "created"
            except KafkaException as e:
                if e.args and e.args[0].name() == "TOPIC_ALREADY_EXISTS":  # made meanwhile: check it
                    continue
                raise TopicsError(f"creating {spec.name} on {hosts}: {_why(e)}") from e
    present = [s for s in specs if outcomes[s.name].state == "exists"]
    if present:
        partitions = {n: len(t.partitions) for n, t in admin.list_topics(timeout=timeout).topics.items()}
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, s.name) for s in present],
                                         request_timeout=timeout)
        configs = {}
        for resource, future in futures.items():
            try:
                configs[resource.name] = {k: v.value for k, v in future.result(timeout=timeout).items()}
            except KafkaException as e:
                raise TopicsError(f"reading the settings of {resource.name} on {hosts}: {_why(e)}") from e
        for spec in present:
            problems = _differences(spec, partitions.get(spec.name), configs.get(spec.name, {}))
            if problems:
                outcomes[spec.name].state = "mismatch"
                outcomes[spec.name].problems = problems
    return [outcomes[s.name] for s in specs]


def _differences(spec: TopicSpec, partitions: int | None, config: dict[str, str | None]) -> list[str]:
    problems = []
    if partitions != spec.partitions:
        problems.append(f"{partitions} partitions, want {spec.partitions}")
    for key, want in sorted(spec.config.items()):
        have = config.get(key)
        if have != want:
            problems.append(f"{key}={'(broker default)' if have is None else have}, want {want}")
    return problems


def _why(e: Exception) -> str:
    err = e.args[0] if e.args else None
    return err.str() if hasattr(err, "str") else str(e)

