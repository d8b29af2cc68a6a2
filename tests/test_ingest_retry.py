"""IngestRetry, the second pass: what the archive's failures cost the shards is recovered.

A small world served by pywb through the fault proxy. The fault-free run is the oracle;
in the faulty run a fixed set of URLs answers 503 during the shards only, so they end
`cdx-error`; after IngestRetry the merged and unique file_meta, the import's counters and
the catalog are exactly the fault-free run's. A retry pass that meets the faults still
leaves them failing, and running it again after the archive recovered picks them up.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import luigi
import pytest
from faultproxy import FaultPlan, FaultProxy, Respond, Rule
from luigi_config import config_options
from test_ingest_tasks import make_world

from pipeline.provenance import meta_path
from pipeline.report.gather import gather_report
from pipeline.report.html import render_html
from pipeline.tasks import ImportFileMeta, IngestResults, IngestRetry

pytestmark = pytest.mark.services

FAILING = r"/articles/(3|8|13|22)\.pdf$"  # four clean PDFs of make_world
FAST = {"retry_backoff": "0.01", "retry_backoff_max": "0.05", "probe_seconds": "0.02",
        "probe_max_seconds": "0.05", "concurrency": "4"}


def build(*tasks):
    res = luigi.build(list(tasks), local_scheduler=True, detailed_summary=True,
                      log_level="WARNING")
    assert res.status == luigi.LuigiStatusCode.SUCCESS, res.summary_text


def lines(path: Path) -> bytes:
    with gzip.open(path, "rb") as f:
        return f.read()


def catalog_rows(path: Path) -> dict:
    """Every file entity as the catalog holds it now, and its number of edits (revision and
    editgroup ids are random: they differ between any two runs)."""
    with sqlite3.connect(path) as db:
        entities = db.execute("SELECT ident, state, active, sha1, body FROM file_ident "
                              "ORDER BY ident").fetchall()
        edits = db.execute("SELECT ident, COUNT(*) FROM file_edit GROUP BY ident "
                           "ORDER BY ident").fetchall()
    return {"entities": [(i, s, a, h, json.loads(b)) for i, s, a, h, b in entities],
            "edits": edits}


def outcome(work: Path) -> dict:
    counts = json.loads(meta_path(work / "files_missing_sha256.import.counts.json").read_text())
    return {
        "merged": lines(work / "files_missing_sha256.file_meta.json.gz"),
        "uniq": lines(work / "files_missing_sha256.file_meta.uniq.json.gz"),
        "import": {k: v for k, v in counts["counts"].items() if k != "catalog_id"},
        "catalog": catalog_rows(work / "catalog.sqlite"),
    }


def fatcat_idents(export: Path) -> None:
    """make_world's idents are digits; the catalog takes fatcat's base32 idents only."""
    with gzip.open(export, "rt") as f:
        entities = [json.loads(line) for line in f]
    for i, e in enumerate(entities):
        e["ident"] = "a" * 24 + "abcdefghijklmnopqrstuvwxyz234567"[i // 32] + \
            "abcdefghijklmnopqrstuvwxyz234567"[i % 32]
    with gzip.open(export, "wt") as f:
        f.write("".join(json.dumps(e) + "\n" for e in entities))


@pytest.fixture
def served_world(tmp_path, pywb):
    export, coll, _expected = make_world(tmp_path)
    fatcat_idents(export)
    with FaultProxy(pywb.serve(coll, f"retry{abs(hash(str(tmp_path))) % 10**8}")) as proxy:
        yield export, proxy


def settings(tmp_path: Path, export: Path, proxy, name: str):
    return {"workdir": str(tmp_path / name), "export": str(export), "archive": proxy.url,
            "sample_size": "10", "shards": "3", "sample_min_success": "0.3", "file_hashes": ""}


def test_first_pass_503s_are_recovered_exactly(served_world, tmp_path):
    export, proxy = served_world
    with config_options("ingest", FAST):
        with config_options("backfill", settings(tmp_path, export, proxy, "clean")):
            build(ImportFileMeta())
        clean = outcome(tmp_path / "clean")
        assert clean["import"]["update"] == 19  # 20 successes, one with a catalog sha1 wrong

        values = settings(tmp_path, export, proxy, "faulty")
        work = Path(values["workdir"])
        with config_options("backfill", values):
            proxy.plan = FaultPlan(rules=[Rule(Respond(503), url=FAILING)])
            build(IngestResults())
            shard_status = {}
            for shard in sorted((work / "ingest_results").glob("shard-*.json.gz")):
                for line in gzip.open(shard, "rt"):
                    r = json.loads(line)
                    shard_status[r["request"]["base_url"]] = r["status"]
            failed = {u for u, s in shard_status.items() if s == "cdx-error"}
            assert len(failed) == 4  # the first pass lost them

            build(IngestRetry())  # the archive still fails them: still failing, nothing lost
            retry = work / "files_missing_sha256.ingest_retry.json.gz"
            first = json.loads(meta_path(retry).read_text())["counts"]
            assert first["in"] == 4 and first["status"] == {"cdx-error": 4}
            assert first["recovered"] == 0

            proxy.plan = FaultPlan()  # the archive recovered: run the pass again
            retry.unlink()
            meta_path(retry).unlink()
            build(ImportFileMeta())
            again = json.loads(meta_path(retry).read_text())["counts"]
            assert again["in"] == 4 and again["recovered"] == 4
            assert again["previous"] == {"cdx-error": 4}
            assert again["before"]["cdx-error"] == 4 and "cdx-error" not in again["after"]

            report = gather_report(work)
            assert report["retry"]["before"]["cdx-error"] == 4
            assert report["retry"]["after"].get("cdx-error", 0) == 0
            assert "Retry pass" in render_html(report)
    faulty = outcome(work)
    assert faulty["merged"] == clean["merged"]
    assert faulty["uniq"] == clean["uniq"]
    assert faulty["import"] == clean["import"]
    assert faulty["catalog"] == clean["catalog"]
