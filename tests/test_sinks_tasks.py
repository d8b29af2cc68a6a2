"""Shards with GROBID, text extraction and sinks on: a real tansu broker, the GROBID stand-in.

The small world: distinct text PDFs (one of them reached by two URLs, one
that PDFium cannot read), an HTML page without a PDF link and a URL with no
capture. Every test runs the real tasks (sample gate, shards, GrobidRetry)
through luigi with the settings an operator would give.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
import zipfile
from functools import partial
from pathlib import Path

import luigi
import pytest
from fakes import FakeArchive, write_world
from luigi_config import config_options
from pdfs import make_pdf
from PIL import Image
from services import free_port

from pipeline.checks import StepFailed
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker
from pipeline.postprocess.retry import retry_grobid
from pipeline.provenance import meta_path
from pipeline.sinks.base import SinkError
from pipeline.sinks.files import FileSink, sink_paths
from pipeline.sinks.message import GROBID, PDF_TEXT, THUMBNAIL, topic_name
from pipeline.tasks import (
    BackfillReport,
    GrobidRetry,
    IngestResults,
    IngestSampleResults,
    IngestShard,
)
from pipeline.wiring import archive_clients, grobid_postprocessor, ingest_processes, ingest_worker

BROKEN_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer garbage\n%%EOF\n"


def make_world(tmp_path: Path, n_pdfs: int = 8) -> tuple[Path, Path, dict]:
    """Export + collection; returns (export, collection, {sha1: title}) of the PDFs ingested."""
    captures, entities, pdfs = [], [], {}

    def entity(i: int, url: str, sha1: str) -> None:
        entities.append({"ident": f"{i:026d}", "sha1": sha1, "state": "active",
                         "mimetype": "application/pdf", "urls": [{"url": url, "rel": "web"}]})

    for i in range(n_pdfs):
        title = f"Paper number {i} on loopback brokers"
        body = make_pdf(title, pages=1 + i % 3)
        sha1 = hashlib.sha1(body).hexdigest()
        pdfs[sha1] = title
        url = f"http://journal{i % 3}.example.org/{i}.pdf"
        captures.append((url, f"2019{i % 12 + 1:02d}01000000", 200, "application/pdf", body, []))
        entity(i, url, sha1)
    broken_sha1 = hashlib.sha1(BROKEN_PDF).hexdigest()
    pdfs[broken_sha1] = None
    captures.append(("http://broken.example.org/x.pdf", "20190101000000", 200, "application/pdf",
                     BROKEN_PDF, []))
    entity(101, "http://broken.example.org/x.pdf", broken_sha1)
    # the same PDF as entity 0 under another URL, in the other shard (round robin)
    first = next(iter(pdfs))
    twin = captures[0]
    captures.append(("http://mirror.example.net/0.pdf", "20200101000000", 200, "application/pdf",
                     twin[4], []))
    entity(100, "http://mirror.example.net/0.pdf", first)
    captures.append(("http://landing.example.org/a", "20190101000000", 200, "text/html",
                     b"<html><body>No PDF here.</body></html>", []))
    entity(102, "http://landing.example.org/a", "e" * 40)
    entity(103, "http://nowhere.example.org/b.pdf", "d" * 40)
    export, coll = write_world(tmp_path, captures, entities)
    return export, coll, pdfs


@pytest.fixture
def world_cfg(tmp_path):
    export, coll, pdfs = make_world(tmp_path)
    work = tmp_path / "work"
    values = {"workdir": str(work), "export": str(export), "archive": str(coll), "sample_size": "4",
              "shards": "2", "sample_min_success": "0.1", "file_hashes": ""}
    with config_options("backfill", values):
        yield work, pdfs


@pytest.fixture
def grobid_cfg(grobid):
    with config_options("grobid", {"host": grobid.url, "timeout": "0.5", "concurrency": "2"}):
        yield grobid


@pytest.fixture
def kafka_cfg(broker):
    with config_options("kafka", {"hosts": broker.hosts, "env": "test", "delivery_timeout": "2"}):
        yield broker


def no_round_wait(monkeypatch) -> None:
    """GrobidRetry's passes one after the other, without `ROUND_WAIT` (2 s, then 4 s) between
    them. The constant is bound as `retry_grobid`'s default when the module is loaded, so
    setting the constant does not reach the step: the step's own name for it is patched."""
    monkeypatch.setattr("pipeline.tasks.ingest.retry_grobid", partial(retry_grobid, round_wait=0.0))


def build(*tasks) -> luigi.execution_summary.LuigiRunResult:
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def shard_results(work: Path) -> list[dict]:
    out = []
    for path in sorted((work / "ingest_results").glob("shard-*.json.gz")):
        with gzip.open(path, "rt") as f:
            out += [json.loads(line) for line in f]
    return out


@pytest.mark.services
def test_shards_publish_to_kafka_once_per_pdf(world_cfg, grobid_cfg, kafka_cfg):
    work, pdfs = world_cfg
    broker = kafka_cfg
    assert build(IngestResults()).status.name == "SUCCESS"
    results = shard_results(work)
    success = [r for r in results if r["status"] == "success"]
    assert {r["file_meta"]["sha1hex"] for r in success} == set(pdfs)
    assert len(success) == len(pdfs) + 1  # the twin URL
    for r in success:
        sha1 = r["file_meta"]["sha1hex"]
        assert "_outbox" not in r
        if pdfs[sha1] is None:
            assert r["pdf_meta"]["status"] == "parse-error"
        else:
            assert r["pdf_meta"]["status"] == "success" and r["pdf_meta"]["sha1hex"] == sha1
            assert r["grobid"]["metadata"]["biblio"]["title"] == pdfs[sha1]
        assert r["grobid"]["status"] == "success" and r["grobid"]["grobid_version"] == "0.8.1"
    # the twin is in the other shard (round robin): each shard publishes its own PDFs once
    expected = len(pdfs) + 1
    grobid = broker.consume(topic_name(GROBID, "test"), expected)
    assert len(grobid) == expected
    assert {k.decode() for k, _ in grobid} == set(pdfs)
    for key, value in grobid:
        msg = json.loads(value)
        assert msg["key"] == key.decode() == msg["file_meta"]["sha1hex"]
        md5 = msg["file_meta"]["md5hex"].upper()
        assert f'<idno type="MD5">{md5}</idno>' in msg["tei_xml"]  # GROBID saw this very PDF
    text = broker.consume(topic_name(PDF_TEXT, "test"), expected)
    assert len(text) == expected and {k.decode() for k, _ in text} == set(pdfs)
    for key, value in text:
        msg = json.loads(value)
        title = pdfs[key.decode()]
        assert msg["sha1hex"] == key.decode()
        assert (title in msg["text"]) if title else msg["status"] == "parse-error"
    thumbs = broker.consume(topic_name(THUMBNAIL, "test"), expected - 1)
    assert len(thumbs) == expected - 1  # none for the PDF PDFium cannot read
    assert {k.decode() for k, _ in thumbs} == {s for s, t in pdfs.items() if t}
    for _, jpeg in thumbs:
        image = Image.open(io.BytesIO(jpeg))
        assert image.format == "JPEG" and image.size[0] <= 180 and image.size[1] <= 300
    sent = [m for shard in range(2) for m in (read_meta(work, shard)["counts"]["messages"],)]
    assert sum(s[topic_name(GROBID, "test")] for s in sent) == expected
    assert not (work / "sinks").exists()  # Kafka configured: no file sinks


def read_meta(work: Path, shard: int) -> dict:
    return json.loads(meta_path(work / f"ingest_results/shard-{shard:03d}-of-002.json.gz").read_text())


@pytest.mark.services
def test_broker_stopped_mid_shard_fails_then_rerun_loses_nothing(world_cfg, grobid_cfg, kafka_cfg):
    work, pdfs = world_cfg
    broker, grobid = kafka_cfg, grobid_cfg
    assert build(IngestSampleResults()).status.name == "SUCCESS"
    stopped = threading.Event()

    def stop_on_third(n: int) -> None:
        if n == 3 and not stopped.is_set():
            broker.stop()
            stopped.set()

    grobid.on_request = stop_on_third
    with config_options("ingest", {"concurrency": "1"}):
        assert build(IngestShard(shard=0, shards=2)).status.name == "FAILED"
    assert stopped.is_set()
    target = work / "ingest_results/shard-000-of-002.json.gz"
    assert not target.exists() and not meta_path(target).exists()
    assert list((work / "ingest_results").glob("*.tmp-*")) == []
    grobid.on_request = None
    broker.start()  # memory only: the topics come back empty
    assert build(IngestResults()).status.name == "SUCCESS"
    distinct = {r["file_meta"]["sha1hex"] for r in shard_results(work) if r["status"] == "success"}
    assert distinct == set(pdfs)
    grobid_msgs = broker.consume(topic_name(GROBID, "test"), len(pdfs) + 1)
    assert {k.decode() for k, _ in grobid_msgs} == set(pdfs)
    assert len(grobid_msgs) == len(pdfs) + 1  # the twin sits in the other shard


@pytest.mark.parametrize("mode", ["fail", "stall", "busy"])
def test_grobid_failures_are_recorded_and_grobid_retry_fixes_them(world_cfg, grobid_cfg, mode):
    work, pdfs = world_cfg
    grobid = grobid_cfg
    grobid.set_mode(mode)
    grobid.stall_seconds = 1.5
    # only the stall is meant to time out (a slow machine only lengthens it); an answer of
    # the other modes, and of the retry, gets all the time a busy machine may need
    with config_options("grobid", {"timeout": "0.5" if mode == "stall" else "30"}):
        assert build(IngestResults()).status.name == "SUCCESS"
    success = [r for r in shard_results(work) if r["status"] == "success"]
    want = {"fail": "error", "stall": "error-timeout", "busy": "error"}[mode]
    assert {r["grobid"]["status"] for r in success} == {want}
    assert all(r["pdf_meta"]["status"] in ("success", "parse-error") for r in success)
    # each shard's sidecar counts what it published, for the run report's GROBID section
    shards = [json.loads(meta_path(p).read_text())["counts"]
              for p in sorted((work / "ingest_results").glob("shard-*.json.gz"))]
    sent = sum(c["messages"][topic_name(GROBID, "dev")] for c in shards)
    assert sent == len(pdfs) + 1  # one PDF twice, in two shards
    code = {"fail": "500", "stall": "-4", "busy": "503"}[mode]
    assert [c["grobid"] for c in shards] == [{want: c["messages"][topic_name(GROBID, "dev")]}
                                             for c in shards]
    assert sum(c["grobid_error_codes"].get(code, 0) for c in shards) == sent
    grobid.set_mode("ok")
    with config_options("grobid", {"timeout": "30"}):
        assert build(GrobidRetry()).status.name == "SUCCESS"
    out = work / "files_missing_sha256.grobid_retry.json.gz"
    with gzip.open(out, "rt") as f:
        lines = [json.loads(line) for line in f]
    assert {x["sha1hex"] for x in lines} == set(pdfs)  # every failed PDF once
    assert len(lines) == len(pdfs)
    assert all(x["status"] == "success" and x["previous"]["status"] == want for x in lines)
    titled = [x for x in lines if pdfs[x["sha1hex"]]]
    assert all(x["grobid"]["metadata"]["biblio"]["title"] == pdfs[x["sha1hex"]] for x in titled)
    counts = json.loads(meta_path(out).read_text())["counts"]
    assert counts["total"] == len(pdfs) and counts["status"] == {"success": len(pdfs)}
    retry_file = sink_paths(work, "dev", "grobid-retry")[GROBID]
    with gzip.open(retry_file, "rt") as f:
        msgs = [json.loads(line) for line in f]
    assert sorted(m["key"] for m in msgs) == sorted(pdfs)
    assert all(m["status"] == "success" and "<TEI" in m["tei_xml"] for m in msgs)


def test_grobid_retry_asks_a_busy_grobid_again_within_the_step(world_cfg, grobid_cfg, monkeypatch):
    work, pdfs = world_cfg
    grobid = grobid_cfg
    grobid.set_mode("busy")
    assert build(IngestResults()).status.name == "SUCCESS"
    shards_asked = len(grobid.requests)
    no_round_wait(monkeypatch)
    # the first retries are refused as busy (the stand-in's mode, set for the next request),
    # then GROBID frees up: the second pass gets the rest answered
    grobid.on_request = lambda n: grobid.set_mode("busy" if n + 1 - shards_asked <= 4 else "ok")
    assert build(GrobidRetry()).status.name == "SUCCESS"
    out = work / "files_missing_sha256.grobid_retry.json.gz"
    with gzip.open(out, "rt") as f:
        lines = [json.loads(line) for line in f]
    assert sorted(x["sha1hex"] for x in lines) == sorted(pdfs)
    assert {x["status"] for x in lines} == {"success"} and not any("file_meta" in x for x in lines)
    assert len(grobid.requests) - shards_asked > len(pdfs)  # some PDFs were asked twice or more


def test_grobid_retry_is_not_complete_while_grobid_does_not_answer(world_cfg, grobid_cfg, monkeypatch):
    work, pdfs = world_cfg
    grobid = grobid_cfg
    no_round_wait(monkeypatch)
    grobid.set_mode("busy")
    assert build(IngestResults()).status.name == "SUCCESS"
    # still busy: the pass fixes nothing, so it publishes nothing and says how many remain
    assert build(GrobidRetry()).status.name == "FAILED"
    assert not GrobidRetry().complete()
    out = work / "files_missing_sha256.grobid_retry.json.gz"
    assert not out.exists() and not meta_path(out).exists()
    with pytest.raises(StepFailed, match=rf"^{len(pdfs)} of {len(pdfs)} PDFs still have GROBID "
                                         rf"errors; GROBID at {grobid.url} did not answer "
                                         rf"{len(pdfs)} of them \(HTTP 503: {len(pdfs)}\)"):
        GrobidRetry().run()
    # GROBID gone altogether: the alive check fails, with the count waiting
    with config_options("grobid", {"host": f"http://127.0.0.1:{free_port()}"}):
        with pytest.raises(StepFailed, match=rf"^{len(pdfs)} PDFs still have GROBID errors; "
                                             "GrobidAlive: GROBID at .* is not reachable"):
            GrobidRetry().run()
    grobid.set_mode("ok")
    assert build(GrobidRetry()).status.name == "SUCCESS"
    assert json.loads(meta_path(out).read_text())["counts"]["status"] == {"success": len(pdfs)}


def test_grobid_refusing_pdfs_completes_the_retry_and_the_report_says_partial(world_cfg, grobid_cfg):
    work, pdfs = world_cfg
    grobid = grobid_cfg
    grobid.set_mode("fail")  # HTTP 500 for every PDF: GROBID's answer, final for the retry
    assert build(IngestResults()).status.name == "SUCCESS"
    assert build(GrobidRetry()).status.name == "SUCCESS"
    out = work / "files_missing_sha256.grobid_retry.json.gz"
    assert json.loads(meta_path(out).read_text())["counts"]["status"] == {"error": len(pdfs)}
    with config_options("backfill", {"catalog": str(work / "catalog.sqlite")}):
        assert build(BackfillReport()).status.name == "SUCCESS"
    report = json.loads((work / "report.json").read_text())
    assert report["outcome"] == {"partial": True, "why": [
        f"{len(pdfs)} PDFs have no GROBID output after GrobidRetry (error: {len(pdfs)})"]}
    assert "Partial run: " in (work / "report.html").read_text()


def test_grobid_down_fails_the_shard_before_any_request(world_cfg):
    work, _ = world_cfg
    host = f"http://127.0.0.1:{free_port()}"
    assert build(IngestSampleResults()).status.name == "SUCCESS"
    with config_options("grobid", {"host": host}):
        assert build(IngestShard(shard=0, shards=2)).status.name == "FAILED"
        with pytest.raises(StepFailed, match=f"GROBID at {host} is not reachable.*start GROBID "
                                             r"\(or fix \[grobid\] host"):
            IngestShard(shard=0, shards=2).run()
    assert not (work / "ingest_results/shard-000-of-002.json.gz").exists()
    assert not (work / "sinks").exists()


def test_backfill_runs_grobid_retry_only_with_grobid(world_cfg):
    assert not any(isinstance(t, GrobidRetry) for t in BackfillReport().requires())
    with config_options("grobid", {"host": "http://grobid.invalid:8070"}):
        assert any(isinstance(t, GrobidRetry) for t in BackfillReport().requires())


def test_grobid_retry_reports_captures_that_changed_or_broke(world_cfg, grobid_cfg, tmp_path):
    work, pdfs = world_cfg
    grobid = grobid_cfg
    grobid.set_mode("busy")
    assert build(IngestResults()).status.name == "SUCCESS"
    results = [r for r in shard_results(work) if r["status"] == "success"]
    changed, broken = results[0], results[1]
    changed["file_meta"] = dict(changed["file_meta"], sha1hex="0" * 40)
    broken["cdx"] = dict(broken["cdx"], warc_offset=broken["cdx"]["warc_offset"] + 7)
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(changed) + "\n" + json.dumps(broken) + "\n")
    grobid.set_mode("ok")
    _, content = archive_clients()
    sink = FileSink(tmp_path / "retry", "dev", "grobid-retry")
    counts = retry_grobid([str(damaged)], str(tmp_path / "out.json.gz"), content,
                          grobid_postprocessor(), sink, 1 << 20)
    assert counts["total"] == 2
    assert counts["status"] == {"fetch-error": 1, "sha1-mismatch": 1}
    assert counts["messages"][topic_name(GROBID, "dev")] == 0  # nothing sent to GROBID
    with gzip.open(tmp_path / "out.json.gz", "rt") as f:
        lines = [json.loads(line) for line in f]
    assert lines[0]["status"] == "sha1-mismatch" and "0" * 40 in lines[0]["error_msg"]
    assert lines[1]["status"] == "fetch-error" and lines[1]["error_msg"]
    # GROBID saw only the shards' requests (one per successful ingest, the twin too), all busy
    assert len(grobid.requests) == len(results) == len(pdfs) + 1
    assert {r["mode"] for r in grobid.requests} == {"busy"}


def test_a_local_archive_runs_in_processes(world_cfg):
    """The local archive never waits: its requests go to processes, text extraction with them."""
    worker = ingest_worker(postprocess=True)
    assert [type(s).__name__ for s in worker.postprocessors] == ["PdfTextPostProcessor"]
    assert ingest_processes(worker)
    assert not ingest_processes(IngestWorker(FakeArchive(), FakeArchive(), IngestSettings()))


@pytest.mark.services
def test_grobid_keeps_the_shard_on_threads(world_cfg, grobid_cfg):
    """GROBID waits on the network: `[ingest] concurrency` threads keep PDFs in flight there."""
    assert not ingest_processes(ingest_worker(postprocess=True))


def test_file_sinks_by_default_written_with_the_shard(world_cfg):
    work, pdfs = world_cfg
    assert build(IngestResults()).status.name == "SUCCESS"
    seen_text, seen_thumbs = set(), set()
    for shard in range(2):
        paths = sink_paths(work, "dev", f"shard-{shard:03d}-of-002")
        with gzip.open(paths[PDF_TEXT], "rt") as f:
            keys = [json.loads(line)["key"] for line in f]
        assert len(keys) == len(set(keys))
        seen_text |= set(keys)
        with zipfile.ZipFile(paths[THUMBNAIL]) as z:
            seen_thumbs |= {n[:-4] for n in z.namelist()}
        with gzip.open(paths[GROBID], "rt") as f:
            assert f.read() == ""  # GROBID not configured: results say disabled, nothing sent
        meta = read_meta(work, shard)
        assert meta["counts"]["messages"][topic_name(PDF_TEXT, "dev")] == len(keys)
        assert {o["path"] for o in meta["outputs"]} >= {str(p) for p in paths.values()}
    assert seen_text == set(pdfs)
    assert seen_thumbs == {s for s, t in pdfs.items() if t}
    assert all(r["grobid"] == {"status": "disabled"} for r in shard_results(work) if r["status"] == "success")
    # a sink file removed: its shard is incomplete again and is remade
    sink_paths(work, "dev", "shard-001-of-002")[THUMBNAIL].unlink()
    assert not IngestShard(shard=1, shards=2).complete()
    assert IngestShard(shard=0, shards=2).complete()


@pytest.mark.services
def test_message_refused_as_too_large_fails_the_shard_naming_it(world_cfg, kafka_cfg):
    work, pdfs = world_cfg
    assert build(IngestSampleResults()).status.name == "SUCCESS"
    with config_options("kafka", {"message_max_bytes": "1500"}):
        assert build(IngestShard(shard=0, shards=2)).status.name == "FAILED"
        with pytest.raises(SinkError, match=r"sandcrawler-test\.pdf-(text|thumbnail-180px-jpg) "
                                            r"key ([0-9a-f]{40}) \(\d+ bytes\) refused: .*(large|size)"):
            IngestShard(shard=0, shards=2).run()
    assert not (work / "ingest_results/shard-000-of-002.json.gz").exists()
