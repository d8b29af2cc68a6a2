"""ingest_file over real request files, shard splitting, and the sample QA gate."""

from __future__ import annotations

import gzip
import json

import pytest
from fakes import FakeArchive, make_pdf

from pipeline.checks import StepFailed
from pipeline.ingest.run import check_sample_gate, ingest_file, shard_requests, summarise
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker
from pipeline.jsonio import dumps


def write_requests(path, n, archive):
    lines = []
    for i in range(n):
        url = f"http://h.example.org/{i}.pdf"
        if i % 3:
            archive.add(url, make_pdf(f"p{i}"))
        lines.append(dumps({"base_url": url, "ext_ids": {"sha1": f"{i:040x}"}, "ingest_type": "pdf",
                            "ingest_request_source": "file-backfill", "link_source": "fatcat",
                            "link_source_id": f"file_{i}"}))
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def test_shards_partition_the_requests(tmp_path):
    a = FakeArchive()
    req = tmp_path / "req.json.gz"
    write_requests(req, 10, a)
    worker = IngestWorker(a, a, IngestSettings())
    seen = []
    for shard in range(3):
        out = tmp_path / f"shard-{shard:03d}-of-003.json.gz"
        counts = ingest_file(str(req), str(out), worker, concurrency=2, shard=shard, shards=3)
        with gzip.open(out, "rt") as f:
            results = [json.loads(line) for line in f]
        assert counts["total"] == len(results)
        seen += [r["request"]["base_url"] for r in results]
        # round robin: shard s holds requests s, s+3, s+6...
        assert [r["request"]["link_source_id"] for r in results] == [
            f"file_{i}" for i in range(shard, 10, 3)]
    assert sorted(seen) == sorted(f"http://h.example.org/{i}.pdf" for i in range(10))


def test_plain_output_and_summary(tmp_path):
    a = FakeArchive()
    req = tmp_path / "req.json.gz"
    write_requests(req, 6, a)
    out = tmp_path / "sample.json"
    counts = ingest_file(str(req), str(out), IngestWorker(a, a, IngestSettings()), 1)
    lines = out.read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["status"] == "no-capture"
    assert summarise(counts) == {"in": 6, "out": 6, "success": 4, "success_rate": 0.6667,
                                 "status": {"no-capture": 2, "success": 4}}


def test_bad_request_line_fails_with_line_number(tmp_path):
    req = tmp_path / "req.json"
    req.write_text('{"base_url": "http://x.org/a.pdf", "ingest_type": "pdf"}\n[1, 2]\n')
    with pytest.raises(StepFailed, match="line 2: not a JSON object"):
        list(shard_requests(str(req)))
    req.write_text('{"base_url": "x.org/a.pdf", "ingest_type": "pdf"}\n')
    with pytest.raises(StepFailed, match="line 1: not an ingest request .bad-base-url."):
        ingest_file(str(req), str(tmp_path / "out.json"), IngestWorker(None, None, IngestSettings()), 1)
    assert not (tmp_path / "out.json").exists()  # nothing published


def test_empty_requests_file(tmp_path):
    req = tmp_path / "req.json"
    req.write_text("")
    out = tmp_path / "out.json"
    counts = ingest_file(str(req), str(out), IngestWorker(None, None, IngestSettings()), 4)
    assert counts == {"total": 0} and out.read_text() == ""


def test_sample_gate():
    good = {"in": 10, "success": 5, "status": {"success": 5, "no-capture": 5}}
    check_sample_gate(good, 0.5, "s.json")
    check_sample_gate({"in": 0, "success": 0}, 0.5, "s.json")
    bad = {"in": 10, "success": 4, "status": {"success": 4, "no-capture": 5, "cdx-error": 1}}
    with pytest.raises(StepFailed) as e:
        check_sample_gate(bad, 0.5, "/w/files_missing_sha256.ingest_results.sample.json")
    msg = str(e.value)
    assert "0.400 (4/10)" in msg and "sample_min_success 0.5" in msg
    assert "no-capture=5, success=4, cdx-error=1" in msg
    assert "files_missing_sha256.ingest_results.sample.json" in msg


def test_a_request_lost_before_the_worker_fails_the_shard(tmp_path, monkeypatch):
    """The lines-written check counts the shard's requests from the requests file, not from
    the loop that writes results: a request lost on the way in (here the reader drops the
    last one) leaves lines == results, and must still fail the shard."""
    from pipeline.ingest import run

    a = FakeArchive()
    req = tmp_path / "req.json.gz"
    write_requests(req, 7, a)
    real = run.shard_requests
    monkeypatch.setattr(run, "shard_requests", lambda *args: list(real(*args))[:-1])
    out = tmp_path / "shard-001-of-002.json.gz"
    with pytest.raises(StepFailed, match="3 lines written and 3 results counted for the 4 requests"):
        ingest_file(str(req), str(out), IngestWorker(a, a, IngestSettings()), 2, shard=0, shards=2)
    assert not out.exists()  # nothing published


@pytest.mark.parametrize(("n", "shards"), [(0, 3), (1, 3), (7, 2), (10, 3), (24, 24)])
def test_shard_request_counts_partition_the_file(tmp_path, n, shards):
    from pipeline.ingest.run import count_shard_requests

    req = tmp_path / "req.json.gz"
    write_requests(req, n, FakeArchive())
    got = [count_shard_requests(str(req), s, shards) for s in range(shards)]
    assert sum(got) == n and max(got) - min(got) <= (1 if n else 0)
    assert got == [len(range(s, n, shards)) for s in range(shards)]
