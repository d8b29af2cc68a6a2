"""`python -m pipeline kafka create-topics` against a real Kafka-protocol broker (tansu, in memory).

The fixture's broker already has the sandcrawler-test.* topics (1 partition,
no settings: what the sink tests need); a run with env `dev` finds none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from services import free_port

from pipeline.sinks.base import SinkError
from pipeline.sinks.kafka import KafkaSink
from pipeline.sinks.message import GROBID, PDF_TEXT, THUMBNAIL, TOPICS, Message, topic_name
from pipeline.sinks.topics import TopicsError, ensure_topics, topic_specs

ROOT = Path(__file__).resolve().parent.parent
DEV = [topic_name(kind, "dev") for kind in TOPICS]

pytestmark = pytest.mark.services


def create_topics(hosts: str, env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "kafka", "create-topics",
                           "--hosts", hosts, "--env", env],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def described(hosts: str, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    """(partitions, settings) of each topic, as the broker tells them."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": hosts})
    topics = admin.list_topics(timeout=10).topics
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names])
    configs = {r.name: {k: v.value for k, v in f.result(10).items()} for r, f in futures.items()}
    return {n: (len(topics[n].partitions), configs[n]) for n in names}


def test_create_topics_makes_sandcrawlers_topics_and_a_shard_can_then_publish(broker):
    with pytest.raises(SinkError, match="has no topic"):  # what a shard hits before
        KafkaSink(broker.hosts, "dev")
    p = create_topics(broker.hosts, "dev")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["created", t] for t in DEV]  # one line each
    topics = described(broker.hosts, DEV)
    for name, (partitions, settings) in topics.items():
        assert partitions == 12, name
        assert settings["cleanup.policy"] == "compact"
        assert settings["max.message.bytes"] == "30000000"  # the producer's message.max.bytes
    assert [topics[t][1].get("compression.type") for t in DEV] == ["gzip", "gzip", None]
    sink = KafkaSink(broker.hosts, "dev")
    for i in range(20):
        key = f"{i:040x}"
        sink.publish(Message(GROBID, key, {"key": key, "status": "success"}))
        sink.publish(Message(PDF_TEXT, key, {"key": key, "text": "x" * 1000}))
        sink.publish(Message(THUMBNAIL, key, b"\xff\xd8" + bytes(2000)))
    assert sink.close() == {t: 20 for t in DEV}  # every message acknowledged by the broker


def test_a_second_run_finds_the_topics_right_and_changes_nothing(broker):
    assert create_topics(broker.hosts, "dev").returncode == 0
    before = described(broker.hosts, DEV)
    p = create_topics(broker.hosts, "dev")
    assert p.returncode == 0, p.stderr
    assert [line.split()[:2] for line in p.stdout.splitlines()] == [["exists", t] for t in DEV]
    assert described(broker.hosts, DEV) == before


def test_topics_with_other_settings_are_reported_and_left_alone(broker):
    test_topics = [topic_name(kind, "test") for kind in TOPICS]  # made by the fixture: 1 partition
    before = described(broker.hosts, test_topics)
    p = create_topics(broker.hosts, "test")
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert len(lines) == 3
    grobid = lines[0]
    assert grobid.startswith(f"mismatch {topic_name(GROBID, 'test')}: ")
    assert "1 partitions, want 12" in grobid
    assert "cleanup.policy=(broker default), want compact" in grobid
    assert "max.message.bytes=(broker default), want 30000000" in grobid
    assert "left as it is" in p.stderr
    assert described(broker.hosts, test_topics) == before  # nothing altered


def test_no_broker_is_a_clear_error_not_a_hang():
    hosts = f"127.0.0.1:{free_port()}"
    with pytest.raises(TopicsError, match=f"Kafka broker {hosts} did not answer within 1 s"):
        ensure_topics(hosts, topic_specs("dev", 30_000_000), timeout=1.0)


def test_specs_follow_kafka_env_and_the_message_size_setting():
    specs = topic_specs("prod", 12_345_678)
    assert [s.name for s in specs] == [topic_name(kind, "prod") for kind in (GROBID, PDF_TEXT,
                                                                           THUMBNAIL)]
    assert {s.config["max.message.bytes"] for s in specs} == {"12345678"}
