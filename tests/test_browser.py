"""What operators look at, rendered by a real headless chromium: luigid's visualiser and report.html.

One run of the whole pipeline through a real luigid (two workers); then
chromium loads the visualiser's dependency graph of `Backfill` and the run's
report page, and the tests read what rendered (the DOM after the scripts ran,
and a screenshot). Chromium comes from Debian (installed by the test setup).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import dump_dom, screenshot

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def run(tmp_path_factory, world):
    """luigid on 127.0.0.1 and one Backfill run against it (GROBID: the stand-in, answering 503
    now and then, so the report has GROBID errors to show); yields (luigid, workdir)."""
    from grobid_standin import run_grobid_standin
    from luigid_service import run_luigid

    def now_and_then_busy(n: int) -> None:
        # busy now and then while the shards send their ~1,200 PDFs, then not: GrobidRetry
        # fails a run whose retries GROBID does not answer
        grobid.set_mode("busy" if n % 9 == 0 and n <= 900 else "ok")

    base = tmp_path_factory.mktemp("browser")
    with run_luigid(base / "luigid") as server, run_grobid_standin() as grobid:
        grobid.on_request = now_and_then_busy
        work = base / "work"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("LUIGI_CONFIG_PATH", None)
        proc = subprocess.run(
            [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
             "--scheduler-host", "127.0.0.1", "--scheduler-port", str(server.port),
             "--workers", "2", "--backfill-workdir", str(work),
             "--backfill-export", str(world / "file_export.json.gz"),
             "--backfill-archive", str(world / "collection"), "--backfill-sample-size", "50",
             "--pdftext-enabled", "false",  # the report is the subject; PDF text costs a minute
             "--grobid-host", grobid.url],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield server, work


def test_visualiser_draws_the_backfill_graph_with_every_task_done(run, chromium, tmp_path):
    server, _ = run
    done = server.tasks("DONE")
    backfill = [tid for tid, t in done.items() if t["name"] == "Backfill"]
    assert len(backfill) == 1
    url = f"{server.visualiser}#tab=graph&taskId={backfill[0]}"
    dom = dump_dom(chromium, url, wait_ms=8000)
    nodes = re.findall(r'<a [^>]*class="graph-node-a"[^>]*data-task-status="([A-Z]+)"'
                       r'[^>]*data-task-id="([^"]+)"', dom)
    assert nodes, "the visualiser drew no graph node"
    drawn = {tid for _, tid in nodes}
    assert drawn == set(done)  # every task of the run is a node of Backfill's graph
    assert {status for status, _ in nodes} == {"DONE"}
    names = set(re.findall(r'class="graph-node-a"[^>]*><text[^>]*>([A-Za-z0-9]+)</text>', dom))
    assert {"Backfill", "IngestShard", "MergeFileMeta", "ImportFileMeta"} <= names
    png = screenshot(chromium, url, tmp_path / "visualiser.png", wait_ms=8000)
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_report_page_renders_its_sections_and_every_chart(run, chromium, tmp_path):
    _, work = run
    page = work / "report.html"  # written by BackfillReport, which Backfill requires
    # after load, the page stamps each chart's drawn size into the DOM
    probe = ("<script>window.addEventListener('load', () => { for (const svg of "
             "document.querySelectorAll('figure svg')) { const r = svg.getBoundingClientRect(); "
             "svg.parentNode.dataset.rendered = Math.round(r.width) + 'x' + Math.round(r.height); "
             "} });</script>")
    probed = tmp_path / "report-probed.html"
    probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
    dom = dump_dom(chromium, probed.resolve().as_uri(), wait_ms=3000)
    sizes = dict(re.findall(r'<figure id="chart-([a-z_]+)" data-rendered="(\d+x\d+)"', dom))
    assert set(sizes) == {"status_overall", "failures_overall", "failures_per_shard",
                          "status_sample", "grobid", "durations", "steps"}
    assert all(int(w) >= 700 and int(h) >= 60 for w, h in (s.split("x") for s in sizes.values()))
    for heading in ("Ingest", "GROBID", "Sinks", "Run time", "Steps", "Catalog import"):
        assert re.search(rf"<h2[^>]*>{heading}</h2>", dom), heading
    assert "IngestShard 003/004" in dom and "ImportFileMeta" in dom
    assert "MISMATCH" not in dom
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S))
    for raw in ("{'", "True", "False", "None"):
        assert raw not in text, raw
    assert re.search(r"dry_run\s+yes", text)  # the sample's dry run, in words


def colours(png: Path) -> dict[tuple[int, int, int], int]:
    """How many pixels of each exact colour the screenshot has."""
    from PIL import Image

    with Image.open(png) as im:
        return {rgb: n for n, rgb in im.convert("RGB").getcolors(maxcolors=1 << 24)}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def chart_png(chromium: str, page: str, name: str, tmp_path: Path) -> Path:
    """A screenshot of one chart of the report, alone on a page (cut from the real report)."""
    figure = re.search(rf'<figure id="chart-{name}">.*?</figure>', page, flags=re.S)
    assert figure, f"the report has no {name} chart"
    alone = tmp_path / f"{name}.html"
    alone.write_text(f'<!DOCTYPE html><html><body style="margin:0">{figure.group(0)}</body></html>')
    return screenshot(chromium, alone.resolve().as_uri(), tmp_path / f"{name}.png", size=(800, 900),
                      wait_ms=500)


def test_screenshot_shows_each_status_in_its_own_colour_in_every_chart(run, chromium, tmp_path):
    from pipeline.report.palette import SUCCESS_COLOR, status_color

    _, work = run
    page = (work / "report.html").read_text()
    no_capture, success = rgb(status_color("no-capture")), rgb(SUCCESS_COLOR)
    drawn = {name: colours(chart_png(chromium, page, name, tmp_path))
             for name in ("status_overall", "failures_overall", "failures_per_shard")}
    for name, pixels in drawn.items():
        assert pixels.get(no_capture, 0) > 50, name  # the same amber in all three charts
    assert drawn["status_overall"].get(success, 0) > 500
    for name in ("failures_overall", "failures_per_shard"):  # failures only: no success bar
        assert drawn[name].get(success, 0) == 0, name
    fail_colours = {rgb(status_color(s)) for s in re.findall(r"<title>([a-z-]+):", page)} - {success}
    assert len(fail_colours & set(drawn["failures_overall"])) >= 8  # many failures, many colours
    whole = screenshot(chromium, (work / "report.html").resolve().as_uri(),
                       tmp_path / "report.png", size=(1280, 3400), wait_ms=1000)
    assert whole.read_bytes().startswith(PNG_MAGIC)
    pixels = colours(whole)
    assert pixels.get(no_capture, 0) > 150 and pixels.get(success, 0) > 500
