"""The run report from sidecars: figures, hand-off checks, charts embedded as PNG data URIs."""

from __future__ import annotations

import base64
import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.jsonio import read_json, write_json
from pipeline.provenance import SidecarError, file_identity, seal_meta
from pipeline.report import gather_report, render_html, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def sidecar(work: Path, target: str, task: str, counts: dict, params: dict | None = None,
            seconds: float | None = None) -> str:
    path = work / target
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    meta = {"task": task, "params": params or {}, "counts": counts, "settings": {},
            "outputs": [file_identity(path)], "finished": "2026-12-04T10:00:00Z"}
    if seconds is not None:
        meta["seconds"] = seconds
    write_json(f"{path}.meta.json", seal_meta(meta))
    return str(path)


@pytest.fixture
def work(tmp_path):
    w = tmp_path / "work"
    sidecar(w, "files_missing_sha256.json.gz", "ExportMissingSha256",
            {"in": 120, "out": 100, "has_sha256": 17, "rejects": 3,
             "rejects_by_reason": {"invalid-json": 2, "not-an-object": 1}}, seconds=2.0)
    sidecar(w, "files_missing_sha256.ingest_request.json.gz", "IngestRequests",
            {"in": 100, "out": 90, "rejects": 10, "rejects_by_reason": {"no-usable-url": 10}},
            seconds=1.0)
    sidecar(w, "ingest_results/shard-001-of-002.json.gz", "IngestShard",
            {"in": 45, "out": 45, "success": 40, "success_rate": 0.8889,
             "status": {"success": 40, "no-capture": 5}}, {"shard": "1", "shards": "2"}, seconds=9.0)
    sidecar(w, "ingest_results/shard-000-of-002.json.gz", "IngestShard",
            {"in": 44, "out": 44, "success": 42, "success_rate": 0.9545,
             "status": {"success": 42, "wayback-error": 1, "no-capture": 1}},
            {"shard": "0", "shards": "2"}, seconds=11.0)
    sidecar(w, "files_missing_sha256.file_meta.json.gz", "MergeFileMeta",
            {"in": 89, "out": 82, "rejects": 7, "rejects_by_reason": {"ingest-failed": 7}})
    sidecar(w, "files_missing_sha256.file_meta.uniq.json.gz", "UniqFileMeta",
            {"in": 82, "out": 80, "duplicate_lines": 2})
    write_json(w / "files_missing_sha256.file_meta.dupes.json",
               {"duplicate_lines": 2, "from_duplicate_requests": 2,
                "most_duplicated": [{"sha1hex": f"{i:040x}", "lines": 2, "requests": 2}
                                    for i in range(15)]})
    sidecar(w, "files_missing_sha256.import.counts.json", "ImportFileMeta",
            {"total": 80, "update": 77, "insert": 0, "skip-existing-complete": 3, "editgroups": 1})
    return w


def test_every_step_in_dependency_order_with_in_out_rejects_and_rate(work):
    report = gather_report(work)
    steps = [(r["step"], r["params"].get("shard")) for r in report["steps"]]
    assert steps == [("ExportMissingSha256", None), ("IngestRequests", None),
                     ("IngestShard", "0"), ("IngestShard", "1"), ("MergeFileMeta", None),
                     ("UniqFileMeta", None), ("ImportFileMeta", None)]
    export = report["steps"][0]
    assert (export["in"], export["out"], export["rejects"]) == (120, 100, 3)
    assert export["rejects_by_reason"] == {"invalid-json": 2, "not-an-object": 1}
    assert export["rate_per_s"] == 60.0 and export["target"] == "files_missing_sha256.json.gz"
    imp = report["steps"][-1]
    assert (imp["in"], imp["out"], imp["rejects"]) == (80, 77, None)  # no rejects counter: none shown
    assert report["steps"][4]["seconds"] is None and report["steps"][4]["rate_per_s"] is None
    assert report["total_step_seconds"] == 23.0


def test_status_histogram_per_shard_and_overall(work):
    ingest = gather_report(work)["ingest"]
    assert [s["shard"] for s in ingest["shards"]] == [0, 1]
    assert ingest["shards"][1]["status"] == {"success": 40, "no-capture": 5}
    assert ingest["overall"] == {"total": 89, "success": 82, "success_rate": 0.9213,
                                 "status": {"success": 82, "no-capture": 6, "wayback-error": 1}}
    assert ingest["sample"] is None  # no sample sidecar in this workdir


def test_hand_offs_are_checked_and_a_mismatch_shows(work):
    checks = {c["check"]: c for c in gather_report(work)["consistency"]}
    assert checks["uniq reads what merge kept"]["ok"] is True
    assert checks["import reads every unique record"]["ok"] is True
    lost = checks["every request ingested in exactly one shard"]
    assert (lost["expected"], lost["found"], lost["ok"]) == (90, 89, False)  # a request went missing
    page = render_html(gather_report(work), charts={})
    assert "MISMATCH" in page


def test_sidecars_and_targets_not_as_their_steps_wrote_them_show(work):
    check = "every sidecar and target is as its step wrote it"
    assert {c["check"]: c["ok"] for c in gather_report(work)["consistency"]}[check] is True
    uniq = work / "files_missing_sha256.file_meta.uniq.json.gz.meta.json"
    meta = read_json(uniq)
    meta["counts"]["out"] = 81  # a count "fixed" by hand
    write_json(uniq, meta)
    (work / "ingest_results/shard-001-of-002.json.gz").write_text("cut\n")  # a target remade by hand
    found = {c["check"]: c for c in gather_report(work)["consistency"]}[check]
    assert found["ok"] is False and len(found["found"]) == 2
    assert "uniq.json.gz.meta.json does not match its checksum" in found["found"][1]
    assert "shard-001-of-002.json.gz is not the file its sidecar recorded" in found["found"][0]
    assert "MISMATCH" in render_html(gather_report(work), charts={})


def test_a_sidecar_that_is_not_json_is_refused_with_its_path(work):
    (work / "files_missing_sha256.file_meta.json.gz.meta.json").write_text("{garbage")
    with pytest.raises(SidecarError, match=r"file_meta.json.gz.meta.json is not JSON"):
        gather_report(work)


def test_duplicates_keep_the_analysis_and_the_top_ten(work):
    dupes = gather_report(work)["duplicates"]
    assert dupes["from_duplicate_requests"] == 2
    assert len(dupes["most_duplicated"]) == 10


def test_only_the_given_targets_are_reported(work):
    shard0 = str(work / "ingest_results/shard-000-of-002.json.gz")
    report = gather_report(work, [shard0, str(work / "not-made-yet.json.gz")])
    assert [r["step"] for r in report["steps"]] == ["IngestShard"]
    assert report["ingest"]["overall"]["total"] == 44


def test_page_embeds_every_chart_as_a_png_and_escapes_text(work):
    meta = read_json(work / "files_missing_sha256.json.gz.meta.json")
    meta["counts"]["rejects_by_reason"]["<script>alert(1)</script>"] = 0
    write_json(work / "files_missing_sha256.json.gz.meta.json", seal_meta(meta))
    report = write_report(work, work / "report.json", work / "report.html")
    page = (work / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [alt for alt, _ in images] == ["Records per step", "Ingest status, all shards",
                                          "Ingest status per shard", "Duration of each step"]
    for _, data in images:
        png = base64.b64decode(data)
        assert png.startswith(PNG_MAGIC) and len(png) > 5000  # a drawn chart, not an empty canvas
    parser = html.parser.HTMLParser()
    parser.feed(page)  # well-formed enough to parse
    assert json.loads((work / "report.json").read_text())["steps"] == report["steps"]
    assert not list(work.glob("report.*.tmp-*"))


def test_an_empty_workdir_gives_an_empty_report_not_an_error(tmp_path):
    report = write_report(tmp_path, tmp_path / "report.json", tmp_path / "report.html")
    assert report["steps"] == [] and report["consistency"] == []
    assert "<img" not in (tmp_path / "report.html").read_text()


def test_importing_the_report_draws_nothing_and_loads_no_matplotlib():
    code = "import sys, pipeline.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
