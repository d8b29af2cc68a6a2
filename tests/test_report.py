"""The run report from sidecars: figures, hand-off checks, charts as inline SVG in fixed colours."""

from __future__ import annotations

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
from pipeline.report.charts import all_charts
from pipeline.report.palette import STATUS_COLORS, SUCCESS_COLOR, status_color

ROOT = Path(__file__).resolve().parents[1]


def sidecar(work: Path, target: str, task: str, counts: dict, params: dict | None = None,
            seconds: float | None = None, **extra) -> str:
    path = work / target
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    meta = {"task": task, "params": params or {}, "counts": counts, "settings": {},
            "outputs": [file_identity(path)], "finished": "2026-12-04T10:00:00Z", **extra}
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


def test_page_draws_every_chart_as_inline_svg_and_escapes_text(work):
    meta = read_json(work / "files_missing_sha256.json.gz.meta.json")
    meta["counts"]["rejects_by_reason"]["<script>alert(1)</script>"] = 0
    write_json(work / "files_missing_sha256.json.gz.meta.json", seal_meta(meta))
    report = write_report(work, work / "report.json", work / "report.html")
    page = (work / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    figures = re.findall(r'<figure id="chart-([a-z_]+)"><figcaption>[^<]*</figcaption><svg ', page)
    assert figures == ["status_overall", "failures_overall", "failures_per_shard", "durations",
                       "steps"]
    assert "<img" not in page  # nothing to decode, nothing loaded
    parser = html.parser.HTMLParser()
    parser.feed(page)  # well-formed enough to parse
    assert json.loads((work / "report.json").read_text())["steps"] == report["steps"]
    assert not list(work.glob("report.*.tmp-*"))


def bar_fills(svg: str) -> dict[str, str]:
    """The fill of each bar of a chart, by the status its tooltip names."""
    return dict((name, fill) for fill, name in
                re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"><title>([^:<]+):', svg))


def test_a_status_has_one_colour_in_every_chart(work):
    charts = all_charts(gather_report(work))
    overall = bar_fills(charts["status_overall"])
    fails = bar_fills(charts["failures_overall"])
    shards = bar_fills(charts["failures_per_shard"])
    # no-capture is the most frequent failure overall, wayback-error the rarest: a colour by rank
    # would differ between the charts; here it is the status's own in all three
    for status in ("no-capture", "wayback-error"):
        assert overall[status] == fails[status] == shards[status] == status_color(status)
    assert overall["success"] == SUCCESS_COLOR
    assert "success" not in fails and "success" not in shards  # failures drawn on their own


def documented_statuses() -> list[str]:
    text = (ROOT / "docs" / "statuses.md").read_text()
    return re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M)


def test_every_documented_status_has_its_own_colour_and_failures_are_not_green():
    statuses = documented_statuses()
    assert len(statuses) >= 19 and "success" in statuses and "no-capture" in statuses
    assert set(statuses) <= set(STATUS_COLORS)
    colours = [STATUS_COLORS[s] for s in statuses]
    assert len(set(colours)) == len(colours)  # no two statuses share a colour (no common grey)
    assert len(set(STATUS_COLORS.values())) == len(STATUS_COLORS)


def test_an_unknown_status_gets_a_stable_colour_of_its_own():
    names = [f"new-status-{i}" for i in range(40)]
    code = ("import json, sys; from pipeline.report.palette import status_color; "
            f"print(json.dumps([status_color(n) for n in {names!r}]))")
    other_process = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                              capture_output=True, text=True).stdout)
    here = [status_color(n) for n in names]
    assert here == other_process  # the same on every run (no hash randomisation)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in here)
    assert len(set(here)) > 30 and SUCCESS_COLOR not in here
    for c in here:  # never the green of success: green is not the dominant channel
        r, g, b = (int(c[i:i + 2], 16) for i in (1, 3, 5))
        assert not (g > r and g > b), c


def page_text(page: str) -> str:
    """What a reader sees: the page's text, tags and SVG markup removed."""
    class Text(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data):
            self.parts.append(data)

    parser = Text()
    parser.feed(page)
    return " ".join(parser.parts)


def test_no_raw_python_values_on_the_page(work):
    imp = work / "files_missing_sha256.import.counts.json"
    meta = read_json(f"{imp}.meta.json")
    meta["counts"].update({"dry_run": False, "recovery": {"abandoned": {}, "resumed": [],
                                                          "earlier_edits": 0}})
    write_json(f"{imp}.meta.json", seal_meta(meta))
    text = page_text(render_html(gather_report(work)))
    for raw in ("{'", "{}", "[]", "True", "False", "None"):
        assert raw not in text, raw
    assert re.search(r"dry_run\s+no\b", text)
    assert re.search(r"abandoned\s+none\b", text)


def test_grobid_sinks_and_run_time_sections_read_from_the_shards_sidecars(work):
    for shard, grobid, codes, start, end in (
            ("0", {"success": 40, "error": 2, "error-timeout": 1}, {"503": 2, "-4": 1},
             "2026-12-04T10:00:00Z", "2026-12-04T10:05:00Z"),
            ("1", {"success": 39, "error": 1}, {"-2": 1},
             "2026-12-04T10:01:00Z", "2026-12-04T10:07:30Z")):
        target = work / f"ingest_results/shard-00{shard}-of-002.json.gz"
        meta = read_json(f"{target}.meta.json")
        meta["counts"].update({"grobid": grobid, "grobid_error_codes": codes, "messages": {
            "sandcrawler-prod.grobid-output-pg": sum(grobid.values()),
            "sandcrawler-prod.pdf-text": 40, "sandcrawler-prod.pdf-thumbnail-180px-jpg": 38}})
        meta.update(settings={"grobid": True, "sink": "kafka", "kafka_env": "prod"},
                    started=start, finished=end)
        write_json(f"{target}.meta.json", meta)
    report = gather_report(work)
    grobid = report["grobid"]
    assert (grobid["sent"], grobid["succeeded"]) == (83, 79)
    assert grobid["errors_by_kind"] == {"HTTP 503": 2, "could not connect": 1, "timed out": 1}
    assert grobid["status"] == {"success": 79, "error": 3, "error-timeout": 1}
    sinks = report["sinks"]
    assert sinks["sink"] == "kafka"
    assert sinks["total"] == {"sandcrawler-prod.grobid-output-pg": 83, "sandcrawler-prod.pdf-text": 80,
                              "sandcrawler-prod.pdf-thumbnail-180px-jpg": 76}
    timing = report["timing"]
    assert timing["wall_seconds"] == 450.0  # 10:00:00 to 10:07:30 (the shards overlap)
    assert {r["step"]: (r["runs"], r["seconds"]) for r in timing["per_step"]}["IngestShard"] == (2, 20.0)
    page = render_html(report)
    text = page_text(page)
    for heading in ("GROBID", "Sinks", "Run time"):
        assert f">{heading}</h2>" in page
    assert "7 min 30 s" in text and "error: HTTP 503" in text
    assert 'id="chart-grobid"' in page


def test_an_empty_workdir_gives_an_empty_report_not_an_error(tmp_path):
    report = write_report(tmp_path, tmp_path / "report.json", tmp_path / "report.html")
    assert report["steps"] == [] and report["consistency"] == []
    page = (tmp_path / "report.html").read_text()
    assert "<img" not in page and "<svg" not in page


def test_writing_the_report_loads_no_matplotlib(work):
    # matplotlib's import and figure rendering were most of the report step's 4-16 s
    code = ("import sys; from pipeline.report import write_report; "
            f"write_report({str(work)!r}, {str(work / 'r.json')!r}, {str(work / 'r.html')!r}); "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
