"""The sinks (pipeline/sinks/): file layout, and Kafka delivery against a real tansu broker."""

from __future__ import annotations

import gzip
import json
import zipfile

import pytest
from services import free_port

from pipeline.sinks.base import SinkError
from pipeline.sinks.files import FileSink, sink_paths
from pipeline.sinks.kafka import KafkaSink
from pipeline.sinks.message import GROBID, PDF_TEXT, THUMBNAIL, Message, attach, topic_name

pytestmark = []


def messages(n: int, text_size: int = 10) -> list[Message]:
    out = []
    for i in range(n):
        key = f"{i:040x}"
        out.append(Message(GROBID, key, {"key": key, "status": "success", "tei_xml": f"<TEI n='{i}'/>"}))
        out.append(Message(PDF_TEXT, key, {"key": key, "sha1hex": key, "text": "w " * text_size}))
        out.append(Message(THUMBNAIL, key, b"\xff\xd8jpeg" + key.encode()))
    return out


def test_topic_names():
    assert topic_name(GROBID, "prod") == "sandcrawler-prod.grobid-output-pg"
    assert topic_name(PDF_TEXT, "prod") == "sandcrawler-prod.pdf-text"
    assert topic_name(THUMBNAIL, "prod") == "sandcrawler-prod.pdf-thumbnail-180px-jpg"


def test_message_kind_and_value_type_must_agree():
    with pytest.raises(ValueError):
        Message(THUMBNAIL, "a" * 40, {"not": "bytes"})
    with pytest.raises(ValueError):
        Message(GROBID, "a" * 40, b"bytes")


def test_file_sink_writes_each_topic_atomically_once_per_key(tmp_path):
    sink = FileSink(tmp_path, "dev", "shard-001-of-004")
    paths = sink_paths(tmp_path, "dev", "shard-001-of-004")
    result = {}
    for m in messages(3) + messages(2):  # keys 0 and 1 come twice: published once
        attach(result, m)
    sink.publish_result(result)
    assert "_outbox" not in result
    assert not any(p.exists() for p in paths.values())  # nothing visible before close
    counts = sink.close()
    assert counts == {"sandcrawler-dev.grobid-output-pg": 3, "sandcrawler-dev.pdf-text": 3,
                      "sandcrawler-dev.pdf-thumbnail-180px-jpg": 3}
    assert paths[GROBID] == tmp_path / "sinks/sandcrawler-dev.grobid-output-pg/shard-001-of-004.json.gz"
    assert paths[THUMBNAIL].name == "shard-001-of-004.thumbnails.zip"
    with gzip.open(paths[GROBID], "rt") as f:
        lines = [json.loads(line) for line in f]
    assert [x["key"] for x in lines] == [f"{i:040x}" for i in range(3)]
    with zipfile.ZipFile(paths[THUMBNAIL]) as z:
        assert z.namelist() == [f"{i:040x}.jpg" for i in range(3)]
        assert z.read(f"{2:040x}.jpg") == b"\xff\xd8jpeg" + f"{2:040x}".encode()
    assert sorted(p.name for p in paths[GROBID].parent.iterdir()) == ["shard-001-of-004.json.gz"]


def test_file_sink_same_messages_give_same_bytes(tmp_path):
    out = []
    for run in ("a", "b"):
        sink = FileSink(tmp_path / run, "dev", "shard-000-of-001")
        for m in messages(4):
            sink.publish(m)
        sink.close()
        out.append([p.read_bytes() for p in sink_paths(tmp_path / run, "dev", "shard-000-of-001").values()])
    assert out[0] == out[1]


def test_file_sink_abort_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with FileSink(tmp_path, "dev", "shard-000-of-001") as sink:
            for m in messages(2):
                sink.publish(m)
            raise RuntimeError("shard failed")
    assert [p for p in (tmp_path / "sinks").rglob("*") if p.is_file()] == []


@pytest.mark.services
def test_kafka_sink_delivers_everything_and_consumes_back(broker):
    sink = KafkaSink(broker.hosts, "test")
    for m in messages(50, text_size=2000) + messages(5):
        sink.publish(m)
    counts = sink.close()
    assert counts == {topic_name(k, "test"): 50 for k in (GROBID, PDF_TEXT, THUMBNAIL)}
    keys = [f"{i:040x}".encode() for i in range(50)]
    grobid = broker.consume(topic_name(GROBID, "test"), 50)
    assert [k for k, _ in grobid] == keys
    assert json.loads(grobid[7][1])["tei_xml"] == "<TEI n='7'/>"
    text = broker.consume(topic_name(PDF_TEXT, "test"), 50)
    assert [k for k, _ in text] == keys
    assert json.loads(text[3][1])["text"] == "w " * 2000
    thumbs = broker.consume(topic_name(THUMBNAIL, "test"), 50)
    assert [v for _, v in thumbs] == [b"\xff\xd8jpeg" + k for k in keys]


@pytest.mark.services
def test_kafka_sink_fails_fast_on_missing_topics_or_no_broker(broker):
    with pytest.raises(SinkError, match="has no topic sandcrawler-other.grobid-output-pg"):
        KafkaSink(broker.hosts, "other")
    hosts = f"127.0.0.1:{free_port()}"
    with pytest.raises(SinkError, match=f"Kafka broker {hosts} did not answer"):
        KafkaSink(hosts, "test", metadata_timeout=1.0)


@pytest.mark.services
def test_kafka_sink_close_raises_when_the_broker_is_gone(broker):
    sink = KafkaSink(broker.hosts, "test", message_timeout_ms=1500)
    broker.stop()
    for m in messages(3):
        sink.publish(m)
    # a delivery report with an error, or (a request still in flight when the broker died)
    # no report before the deadline: either way close() raises
    with pytest.raises(SinkError, match="Kafka deliveries to .* failed|messages still in queue"):
        sink.close()
    with pytest.raises(SinkError):
        sink.publish(Message(GROBID, "f" * 40, {"key": "f" * 40}))


@pytest.mark.services
def test_kafka_sink_refuses_a_too_large_message_naming_it(broker):
    sink = KafkaSink(broker.hosts, "test", message_max_bytes=100_000)
    sink.publish(Message(PDF_TEXT, "a" * 40, {"key": "a" * 40, "text": "small"}))
    with pytest.raises(SinkError, match=f"sandcrawler-test.pdf-text key {'b' * 40} .* refused"):
        sink.publish(Message(PDF_TEXT, "b" * 40, {"key": "b" * 40, "text": "x" * 200_000}))
    sink.abort()
