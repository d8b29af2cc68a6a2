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
    """luigid on 127.0.0.1 and one Backfill run against it; yields (luigid, workdir)."""
    from luigid_service import run_luigid

    base = tmp_path_factory.mktemp("browser")
    with run_luigid(base / "luigid") as server:
        work = base / "work"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("LUIGI_CONFIG_PATH", None)
        proc = subprocess.run(
            [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
             "--scheduler-host", "127.0.0.1", "--scheduler-port", str(server.port),
             "--workers", "2", "--backfill-workdir", str(work),
             "--backfill-export", str(world / "file_export.json.gz"),
             "--backfill-archive", str(world / "collection"), "--backfill-sample-size", "50",
             "--pdftext-enabled", "false"],  # the report is the subject; PDF text costs a minute
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


def test_report_page_renders_its_tables_and_every_chart_image(run, chromium, tmp_path):
    _, work = run
    page = work / "report.html"  # written by BackfillReport, which Backfill requires
    url = page.resolve().as_uri()
    # after load, the page stamps each image's decoded size into the DOM: only an image
    # the browser could decode has a natural width
    probe = ("<script>window.addEventListener('load', () => { for (const img of "
             "document.images) { img.dataset.rendered = img.naturalWidth + 'x' + "
             "img.naturalHeight; } });</script>")
    probed = tmp_path / "report-probed.html"
    probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
    dom = dump_dom(chromium, probed.resolve().as_uri(), wait_ms=3000)
    sizes = re.findall(r'<img [^>]*data-rendered="(\d+)x(\d+)"', dom)
    assert len(sizes) == 5  # steps, status overall, per shard, sample, durations
    assert all(int(w) >= 400 and int(h) >= 100 for w, h in sizes), sizes
    assert "IngestShard 003/004" in dom and "ImportFileMeta" in dom
    assert "MISMATCH" not in dom
    png = screenshot(chromium, url, tmp_path / "report.png", size=(1280, 2400), wait_ms=2000)
    assert png.stat().st_size > 50_000  # tables and charts, not a blank page
