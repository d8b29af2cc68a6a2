"""A whole GROBID outage, and the README's recovery recipe run exactly as written.

The operator's trial: GROBID answered its health check but no PDF for the whole
run; every result carried a GROBID error, `GrobidRetry` completed during the
outage, the run ended ":)" with exit 0, and the README's recipe afterwards did
nothing. Here the same run must fail with the count in one line, and the recipe
(the commands of the README's recovery section, with this test's paths) must then
retry every PDF.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "http://grobid.internal:8070"


def recipe() -> list[list[str]]:
    """The luigi commands of the README's GROBID recovery recipe, as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("recovering after a GROBID outage", 1)[1].split("\n### ", 1)[0]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if HOST in b)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def run(cmd: list[str], work: Path, world: Path, grobid_url: str) -> subprocess.CompletedProcess:
    """`cmd` with this test's work directory, GROBID and world; one scheduler per process."""
    assert cmd[0] == ".venv/bin/luigi"
    args = [{"/srv/backfill": str(work), HOST: grobid_url}.get(a, a) for a in cmd[1:]]
    args = [a if a != "24" else "2" for a in args]  # the sample world: 2 shards
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    full = [sys.executable, "-m", "luigi", *args, "--local-scheduler",
            "--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"), "--backfill-sample-size", "50",
            "--pdftext-enabled", "false"]
    return subprocess.run(full, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_grobid_outage_fails_the_run_and_the_readme_recipe_recovers_it(world, grobid, tmp_path):
    work = tmp_path / "work"
    steps = recipe()
    assert [c[3] for c in steps] == ["Backfill", "GrobidRetry"]
    grobid.set_mode("busy")  # alive, but no PDF answered: for the whole run
    first = run(steps[0], work, world, grobid.url)
    assert first.returncode == 30, first.stderr[-3000:]
    failed = [line for line in first.stderr.splitlines() if "PDFs still have GROBID errors" in line]
    assert failed, first.stderr[-3000:]
    m = re.search(r"(\d+) of (\d+) PDFs still have GROBID errors; GROBID at " + re.escape(grobid.url)
                  + r" did not answer (\d+) of them \(HTTP 503: (\d+)\)", failed[0])
    assert m and len(set(m.groups())) == 1, failed[0]
    waiting = int(m.group(1))
    assert waiting > 1000  # the sample world's distinct PDFs
    assert "failed    GrobidRetry(" in first.stderr
    assert not (work / "files_missing_sha256.grobid_retry.json.gz").exists()
    assert not (work / "report.json").exists()

    grobid.set_mode("ok")
    codes = [run(cmd, work, world, grobid.url) for cmd in steps]
    assert [p.returncode for p in codes] == [0, 0], codes[0].stderr[-3000:] + codes[1].stderr[-3000:]
    assert "Did not run any tasks" in codes[1].stderr
    with gzip.open(work / "files_missing_sha256.grobid_retry.json.gz", "rt") as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == waiting and {x["status"] for x in lines} == {"success"}
    assert {x["previous"]["status_code"] for x in lines} == {503}
    report = json.loads((work / "report.json").read_text())
    assert report["outcome"] == {"partial": False, "why": []}
    assert report["grobid"]["retry"] == {"retried": waiting, "status": {"success": waiting}}
