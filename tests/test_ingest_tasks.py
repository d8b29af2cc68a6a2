"""The ingest tasks over a real (small) local collection: sample, QA gate, shards, merge."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from pathlib import Path

import luigi
import pytest
from fakes import make_pdf, write_world
from luigi_config import config_options

from pipeline.checks import StepFailed
from pipeline.provenance import meta_path
from pipeline.tasks import IngestResults, IngestSampleResults, IngestShard, MergeFileMeta

N = 30


def make_world(tmp_path: Path) -> tuple[Path, Path, dict]:
    """Entities 0..N-1: every 5th has no capture, every 7th lands on an HTML page without a
    PDF link, entity 11 has the wrong sha1 in the catalog; the rest are clean PDFs."""
    captures, entities, expected = [], [], {}
    for i in range(N):
        url = f"http://journal{i % 4}.example.org/articles/{i}.pdf"
        pdf = make_pdf(f"paper {i}")
        sha1 = hashlib.sha1(pdf).hexdigest()
        if i % 5 == 0:
            expected[url] = "no-capture"
        elif i % 7 == 0:
            captures.append((url, "20180304050607", 200, "text/html; charset=utf-8",
                             b"<html><body><p>Moved to a new platform.</p></body></html>", []))
            expected[url] = "no-pdf-link"
        else:
            captures.append((url, f"2019{i % 12 + 1:02d}01000000", 200, "application/pdf", pdf, []))
            expected[url] = "success"
        if i == 11:
            sha1 = "f" * 40
        entities.append({"ident": f"{i:026d}", "sha1": sha1, "state": "active",
                         "mimetype": "application/pdf", "urls": [{"url": url, "rel": "web"}]})
    export, coll = write_world(tmp_path, captures, entities)
    return export, coll, expected


@pytest.fixture
def small_world(tmp_path):
    export, coll, expected = make_world(tmp_path)
    values = {"workdir": str(tmp_path / "work"), "export": str(export), "archive": str(coll),
              "sample_size": "10", "shards": "3", "sample_min_success": "0.3", "file_hashes": ""}
    with config_options("backfill", values):
        yield values, expected


def build(*tasks, log_level="WARNING"):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level=log_level)


def read_lines(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f]


def test_sample_shards_and_merge(small_world, caplog):
    values, expected = small_world
    work = Path(values["workdir"])
    # INFO both ways: luigi sets its logger's level only on its first build in a process
    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        res = build(MergeFileMeta(), log_level="INFO")
    assert res.status == luigi.LuigiStatusCode.SUCCESS, res.summary_text

    sample = work / "files_missing_sha256.ingest_results.sample.json"
    sample_results = read_lines(sample)  # plain JSON lines
    assert len(sample_results) == 10
    sample_counts = json.loads(meta_path(sample).read_text())["counts"]
    hist = {}
    for r in sample_results:
        assert r["status"] == expected[r["request"]["base_url"]]
        hist[r["status"]] = hist.get(r["status"], 0) + 1
    assert sample_counts["status"] == hist and sample_counts["in"] == 10

    requests = read_lines(work / "files_missing_sha256.ingest_request.json.gz")
    assert len(requests) == N
    total = {}
    for s in range(3):
        shard = work / "ingest_results" / f"shard-{s:03d}-of-003.json.gz"
        results = read_lines(shard)
        assert [r["request"] for r in results] == requests[s::3]  # round robin, in order
        for r in results:
            assert r["status"] == expected[r["request"]["base_url"]]
            total[r["status"]] = total.get(r["status"], 0) + 1
        counts = json.loads((work / "ingest_results" / f"shard-{s:03d}-of-003.counts.json").read_text())
        assert counts["total"] == len(results)
        assert sum(v for k, v in counts.items() if k != "total") == len(results)
    assert total == {"no-capture": 6, "no-pdf-link": 4, "success": 20}
    assert any(m.startswith("Worker: Counter({'total': 10") for m in caplog.messages)

    merged = read_lines(work / "files_missing_sha256.file_meta.json.gz")
    assert len(merged) == 19  # 20 successes, entity 11 has the wrong sha1 in the catalog
    assert all(m["mimetype"] == "application/pdf" and len(m["sha256hex"]) == 64 for m in merged)

    before = {p: p.stat().st_mtime_ns for p in work.rglob("*")}
    res = build(IngestResults())
    assert res.status == luigi.LuigiStatusCode.SUCCESS
    assert "Did not run any tasks" in res.summary_text
    assert {p: p.stat().st_mtime_ns for p in work.rglob("*")} == before


def test_sample_gate_refuses_the_shards(small_world):
    values, _ = small_world
    luigi.configuration.get_config().set("backfill", "sample_min_success", "0.95")
    res = build(IngestResults())
    assert res.status == luigi.LuigiStatusCode.FAILED
    work = Path(values["workdir"])
    assert (work / "files_missing_sha256.ingest_results.sample.json").exists()
    assert not list((work / "ingest_results").glob("shard-*.json.gz"))
    with pytest.raises(StepFailed, match=r"sample QA gate: success rate 0\.\d+ .* below "
                                         r"\[backfill\] sample_min_success 0\.95"):
        IngestShard(shard=0, shards=3).run()


def test_bad_shard_number(small_world):
    with pytest.raises(StepFailed, match="shard 3 is not in 0..2"):
        IngestShard(shard=3, shards=3).run()


def test_bad_archive_setting_fails_clearly(small_world, tmp_path):
    luigi.configuration.get_config().set("backfill", "archive", str(tmp_path / "nowhere"))
    # refused by the settings check (a step checks them before its work, even run by hand)
    with pytest.raises(ValueError, match="archive is neither a directory nor an http"):
        IngestSampleResults().run()


def test_unreadable_warc_fails_the_shard_with_one_line_and_a_rerun_after_the_fix_completes(
        small_world, caplog):
    values, expected = small_world
    work = Path(values["workdir"])
    assert build(IngestSampleResults()).status == luigi.LuigiStatusCode.SUCCESS
    warc = Path(values["archive"]) / "archive" / "test-00000.warc.gz"
    kept = warc.with_name("kept.bak")
    warc.rename(kept)
    warc.mkdir()  # tests run as root, who reads any file whatever its mode: a directory is unreadable

    def published():
        return sorted(str(p.relative_to(work)) for p in work.rglob("*")
                      if p.is_file() and ("ingest_results" in p.parts or "sinks" in p.parts))

    line = f"local archive WARC {warc} cannot be read: Is a directory"
    with pytest.raises(StepFailed, match=re.escape(line)):  # not 253 final wayback-errors
        IngestShard(shard=0, shards=3).run()
    assert published() == []
    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        res = build(IngestResults(), log_level="INFO")
    assert res.status == luigi.LuigiStatusCode.FAILED, res.summary_text
    failures = [r for r in caplog.records if line in r.getMessage()]
    assert failures and all(r.exc_info is None and "Traceback" not in r.getMessage()
                            for r in failures), caplog.text
    assert published() == []

    warc.rmdir()
    kept.rename(warc)
    res = build(IngestResults())
    assert res.status == luigi.LuigiStatusCode.SUCCESS, res.summary_text
    statuses = {}
    for s in range(3):
        for r in read_lines(work / "ingest_results" / f"shard-{s:03d}-of-003.json.gz"):
            assert r["status"] == expected[r["request"]["base_url"]], r
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    assert statuses == {"no-capture": 6, "no-pdf-link": 4, "success": 20}
