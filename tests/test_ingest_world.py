"""Every request of the sample world through the ingest worker, against the oracle.

The world (data/generate_world.py) plants captures for every docs/statuses.md status;
`expected.json` says what each request must end with and which file a success
must fetch. File metadata is checked against the WARC records read
independently here (warcio + hashlib), not against the worker's own code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections import Counter
from pathlib import Path

import pytest
from services import QUICK_PATIENCE
from warcio.archiveiterator import ArchiveIterator

from pipeline.archive.factory import open_archive
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.shard import run_shard
from pipeline.ingest.worker import IngestWorker

STATUSES = {
    "success", "no-capture", "link-loop", "wrong-mimetype", "redirect-loop", "wayback-error",
    "null-body", "no-pdf-link", "skip-url-blocklist", "terminal-bad-status", "cdx-error",
    "wayback-content-error", "blocked-cookie", "bad-redirect", "redirects-exceeded",
    "max-hops-exceeded", "bad-gzip-encoding", "body-too-large",
}


def as_request(exp: dict) -> dict:
    return {"base_url": exp["base_url"], "ext_ids": {"sha1": exp["sha1"]},
            "ingest_request_source": "file-backfill", "ingest_type": "pdf",
            "link_source": "fatcat", "link_source_id": f"file_{exp['ident']}"}


@pytest.fixture(scope="module")
def oracle(world: Path) -> dict:
    return json.loads((world / "expected.json").read_text())


@pytest.fixture(scope="module")
def local_results(world: Path, oracle: dict) -> list[dict]:
    cdx, content = open_archive(str(world / "collection"))
    worker = IngestWorker(cdx, content, IngestSettings())
    out: list[dict] = []
    run_shard([as_request(e) for e in oracle["requests"]], worker, out.append, concurrency=4)
    return out


def test_processes_give_the_same_results_as_threads(world, oracle, local_results):
    """The local archive's shard runs in forked processes (one per CPU): the same bytes, the
    same order, the big body and the damaged records included."""
    cdx, content = open_archive(str(world / "collection"))
    worker = IngestWorker(cdx, content, IngestSettings())
    out: list[dict] = []
    run_shard([as_request(e) for e in oracle["requests"]], worker, out.append, concurrency=4,
              processes=True)
    assert out == local_results


def test_every_request_matches_the_oracle(oracle, local_results):
    assert len(local_results) == len(oracle["requests"])
    wrong = []
    for exp, got in zip(oracle["requests"], local_results, strict=True):
        assert got["request"]["base_url"] == exp["base_url"]
        fetched = got.get("file_meta", {}).get("sha1hex") if got["status"] == "success" else None
        if got["status"] != exp["status"] or fetched != exp.get("fetched_sha1") and exp["status"] == "success":
            wrong.append((exp["why"], exp["base_url"], exp["status"], got["status"],
                          got.get("error_message")))
    assert wrong == []
    counts: dict = {}
    for r in local_results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    assert counts == oracle["counts"]


def test_the_world_exercises_every_spec_status(oracle, local_results):
    assert {r["status"] for r in local_results} == STATUSES


def test_result_shape_per_status(local_results):
    for r in local_results:
        assert r["hit"] is (r["status"] == "success")
        assert r["hops"][0] == r["request"]["base_url"]
        if r["status"] in ("success", "wrong-mimetype"):
            assert set(r["file_meta"]) == {"sha1hex", "sha256hex", "md5hex", "size_bytes", "mimetype"}
        else:
            assert "file_meta" not in r
        if r["status"] == "success":
            assert "error_message" not in r
            assert r["file_meta"]["mimetype"] == "application/pdf"
            assert r["grobid"] == {"status": "disabled"}
            assert r["terminal"]["terminal_status_code"] in (200, 226)
            assert r["cdx"]["url"] and len(r["cdx"]["sha1hex"]) == 40
        else:
            assert 0 < len(r["error_message"]) <= 1600
        if "revisit_cdx" in r:
            assert r["cdx"]["mimetype"] == "warc/revisit"
            assert r["revisit_cdx"]["mimetype"] != "warc/revisit"
        if "extract_next_hop" in r:
            nxt = r["extract_next_hop"]["next_url"]
            if r["status"] == "link-loop":
                assert nxt in r["hops"]
            elif r["status"] == "max-hops-exceeded":
                assert nxt not in r["hops"]
            else:
                assert nxt in r["hops"][1:]
        if r["status"] == "max-hops-exceeded":
            assert len(r["hops"]) == 6


def _payload(record) -> bytes:
    """A response record's payload with Content-Encoding gzip undone, read independently."""
    raw = record.raw_stream.read()
    enc = (record.http_headers.get_header("Content-Encoding") or "").lower()
    if enc in ("gzip", "x-gzip"):
        raw = gzip.decompress(raw)
    return raw


def independent_payloads(collection: Path) -> dict[tuple[str, str], bytes]:
    """(target URI, 14-digit date) -> payload of every 200 response record of the collection."""
    out = {}
    for warc in sorted((collection / "archive").glob("*.warc.gz")):
        with open(warc, "rb") as f:
            try:
                for rec in ArchiveIterator(f):
                    if rec.rec_type != "response" or rec.http_headers is None:
                        continue
                    if rec.http_headers.get_statuscode() != "200":
                        continue
                    date = rec.rec_headers.get_header("WARC-Date")
                    ts = "".join(ch for ch in date if ch.isdigit())[:14]
                    try:
                        out[(rec.rec_headers.get_header("WARC-Target-URI"), ts)] = _payload(rec)
                    except (OSError, EOFError, zlib.error):
                        continue  # a damaged record: the worker must not have succeeded on it
            except Exception:  # noqa: BLE001 - a damaged member ends this file's scan
                continue
    return out


def test_file_meta_is_exact(world, oracle, local_results):
    payloads = independent_payloads(world / "collection")
    pdfs = json.loads((world / "pdfs.json").read_text())
    checked = 0
    for r in local_results:
        if r["status"] != "success":
            continue
        src = r.get("revisit_cdx") or r["cdx"]
        body = payloads[(src["url"], src["datetime"])]
        if body[:2] == b"\x1f\x8b":  # stored gzip without Content-Encoding: transfer-encoded
            body = gzip.decompress(body)
        fm = r["file_meta"]
        assert fm["sha1hex"] == hashlib.sha1(body).hexdigest()
        assert fm["sha256hex"] == hashlib.sha256(body).hexdigest()
        assert fm["md5hex"] == hashlib.md5(body).hexdigest()
        assert fm["size_bytes"] == len(body) == pdfs[fm["sha1hex"]]["size"]
        checked += 1
    assert checked == oracle["counts"]["success"]


def test_terminal_is_the_capture_holding_the_oracles_file(world, oracle, local_results):
    """`terminal` names the capture the file came from: read independently from the WARCs
    at (terminal_url, terminal_dt) (through the revisit's original when it was a revisit),
    its payload hashes to the oracle's fetched sha1, and so does `terminal_sha1hex`."""
    payloads = independent_payloads(world / "collection")
    checked = 0
    for exp, r in zip(oracle["requests"], local_results, strict=True):
        if exp["status"] != "success":
            continue
        t = r["terminal"]
        capture = (t["terminal_url"], t["terminal_dt"])
        if "revisit_cdx" in r:
            assert capture not in payloads  # a revisit record: its payload is the original's
            capture = (r["revisit_cdx"]["url"], r["revisit_cdx"]["datetime"])
        body = payloads[capture]
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        assert hashlib.sha1(body).hexdigest() == exp["fetched_sha1"] == t["terminal_sha1hex"], exp["why"]
        checked += 1
    assert checked == oracle["counts"]["success"]


def test_landing_pages_lead_to_pdfs(local_results):
    landing = [g for g in local_results if "extract_next_hop" in g and g["status"] == "success"]
    assert len(landing) >= 10, "the world has landing pages that lead to PDFs"
    techniques = {g["extract_next_hop"]["technique"] for g in landing}
    assert "citation_pdf_url" in techniques and len(techniques) >= 3
    for g in landing:
        assert g["extract_next_hop"]["next_url"] in g["hops"]


@pytest.mark.services
def test_every_request_over_pywb_matches_the_oracle(wayback, oracle, local_results):
    """docs/archive.md: through a pywb `wayback` server every request ends with the oracle's
    `status_over_http` (its local status, except where pywb cannot replay the capture
    itself), the counts are `counts_over_http`, and a request with the same status both
    ways gives the same result both ways."""
    cdx, content = open_archive(wayback, QUICK_PATIENCE)
    worker = IngestWorker(cdx, content, IngestSettings())
    remote: list[dict] = []
    run_shard([as_request(e) for e in oracle["requests"]], worker, remote.append, concurrency=8)
    assert len(remote) == len(oracle["requests"])
    wrong, differ = [], []
    for exp, here, there in zip(oracle["requests"], local_results, remote, strict=True):
        assert there["request"]["base_url"] == exp["base_url"]
        expected = exp.get("status_over_http", exp["status"])
        if there["status"] != expected:
            wrong.append((exp["why"], exp["base_url"], expected, there["status"],
                          there.get("error_message")))
            continue
        if expected != exp["status"]:
            assert "error_message" in there and "file_meta" not in there
            continue
        if expected == "success":
            assert there["file_meta"]["sha1hex"] == exp["fetched_sha1"], exp["why"]
        a = {k: v for k, v in here.items() if k != "error_message"}
        b = {k: v for k, v in there.items() if k != "error_message"}
        cross_url_revisit = "revisit_cdx" in a and a["revisit_cdx"]["url"] != a["cdx"]["url"]
        if cross_url_revisit and "revisit_cdx" not in b:
            # pywb resolves a revisit whose original is filed under another URL, but its
            # replay does not say which capture it used: the HTTP client cannot name it.
            a.pop("revisit_cdx")
        if a != b:
            differ.append((exp["why"], exp["base_url"], here["status"]))
    assert wrong == []
    assert differ == []
    assert dict(Counter(r["status"] for r in remote)) == oracle["counts_over_http"]
