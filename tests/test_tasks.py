"""The Luigi wiring of the data steps: targets, sidecars, reruns, staleness, exit codes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import luigi
import pytest
from luigi_config import config_options

from pipeline.provenance import meta_path
from pipeline.tasks import (
    CountMissingSha256,
    ExportMissingSha256,
    IngestRequests,
    IngestRequestSample,
)

ROOT = Path(__file__).resolve().parents[1]


def make_export(path: Path, n: int = 60) -> Path:
    lines = []
    for i in range(n):
        e = {
            "ident": f"{i:026d}",
            "sha1": f"{i:040x}",
            "state": "active",
            "mimetype": "application/pdf",
            "urls": [{"url": f"http://journal.example/{i}.pdf", "rel": "web"}],
        }
        if i % 3 == 0:
            e["sha256"] = f"{i:064x}"
        if i % 10 == 1:
            e["state"] = "deleted"
        lines.append(json.dumps(e))
    lines.insert(5, "this is not json")
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture
def cfg(tmp_path):
    """Point [backfill] at a tmp work dir and export; the config is restored afterwards."""
    export = make_export(tmp_path / "export.json.gz")
    values = {"workdir": str(tmp_path / "work"), "export": str(export), "sample_size": "10", "file_hashes": ""}
    with config_options("backfill", values):
        yield values


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def mtimes(workdir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in workdir.iterdir()}


def test_chain_writes_targets_and_sidecars(cfg):
    res = build(IngestRequestSample())
    assert res.status == luigi.LuigiStatusCode.SUCCESS
    work = Path(cfg["workdir"])
    for name in (
        "files_missing_sha256.json.gz",
        "files_missing_sha256.rejects.json.gz",
        "files_missing_sha256.ingest_request.json.gz",
        "files_missing_sha256.ingest_request.rejects.json.gz",
        "files_missing_sha256.ingest_request.sample.json",
    ):
        assert (work / name).exists(), name
    meta = json.loads(meta_path(work / "files_missing_sha256.json.gz").read_text())
    assert meta["task"] == "ExportMissingSha256"
    assert meta["counts"]["in"] == 61 and meta["counts"]["out"] == 40 and meta["counts"]["rejects"] == 1
    assert meta["inputs"][0]["path"] == cfg["export"] and meta["inputs"][0]["size"] > 0
    assert meta["settings"] == {"export": cfg["export"]}
    assert meta["version"]
    req_meta = json.loads(meta_path(work / "files_missing_sha256.ingest_request.json.gz").read_text())
    assert req_meta["counts"]["rejects_by_reason"] == {"not-active": 4}
    sample = (work / "files_missing_sha256.ingest_request.sample.json").read_text().splitlines()
    assert len(sample) == 10
    assert not list(work.glob("*.tmp-*"))


def test_rerun_runs_nothing_and_rewrites_nothing(cfg):
    assert build(IngestRequestSample()).status == luigi.LuigiStatusCode.SUCCESS
    before = mtimes(Path(cfg["workdir"]))
    res = build(IngestRequestSample())
    assert "Did not run any tasks" in res.summary_text
    assert mtimes(Path(cfg["workdir"])) == before


def test_deleting_a_middle_target_reruns_it_and_downstream_only(cfg):
    build(IngestRequestSample())
    work = Path(cfg["workdir"])
    before = mtimes(work)
    (work / "files_missing_sha256.ingest_request.json.gz").unlink()
    res = build(IngestRequestSample())
    assert res.status == luigi.LuigiStatusCode.SUCCESS
    after = mtimes(work)
    # upstream untouched
    assert after["files_missing_sha256.json.gz"] == before["files_missing_sha256.json.gz"]
    assert after["files_missing_sha256.json.gz.meta.json"] == before["files_missing_sha256.json.gz.meta.json"]
    # the deleted step ran again and made the same bytes...
    assert after["files_missing_sha256.ingest_request.json.gz.meta.json"] != before["files_missing_sha256.ingest_request.json.gz.meta.json"]
    assert (work / "files_missing_sha256.ingest_request.json.gz").exists()
    # ...so the step after it kept its target and sidecar
    assert after["files_missing_sha256.ingest_request.sample.json"] == before["files_missing_sha256.ingest_request.sample.json"]
    assert after["files_missing_sha256.ingest_request.sample.json.meta.json"] == before["files_missing_sha256.ingest_request.sample.json.meta.json"]
    assert IngestRequestSample().complete()


def test_changed_input_content_reruns_everything_downstream(cfg):
    build(IngestRequestSample())
    work = Path(cfg["workdir"])
    before = mtimes(work)
    make_export(Path(cfg["export"]), n=90)  # a new export: more entities
    assert not IngestRequestSample().complete()
    assert build(IngestRequestSample()).status == luigi.LuigiStatusCode.SUCCESS
    after = mtimes(work)
    for name in ("files_missing_sha256.json.gz", "files_missing_sha256.ingest_request.json.gz",
                 "files_missing_sha256.ingest_request.sample.json"):
        assert after[name] != before[name], name
    assert json.loads(meta_path(work / "files_missing_sha256.json.gz").read_text())["counts"]["in"] == 91


def test_touched_input_with_the_same_bytes_changes_nothing(cfg):
    build(IngestRequestSample())
    work = Path(cfg["workdir"])
    before = mtimes(work)
    os.utime(cfg["export"], ns=(1, 1))  # same bytes, another mtime
    assert IngestRequestSample().complete() and ExportMissingSha256().complete()
    res = build(IngestRequestSample())
    assert "Did not run any tasks" in res.summary_text
    assert mtimes(work) == before


def test_changed_setting_makes_the_step_stale(cfg):
    build(IngestRequestSample())
    assert IngestRequestSample().complete()
    luigi.configuration.get_config().set("backfill", "sample_size", "5")
    assert not IngestRequestSample().complete()
    assert IngestRequests().complete()
    build(IngestRequestSample())
    sample = Path(cfg["workdir"], "files_missing_sha256.ingest_request.sample.json").read_text().splitlines()
    assert len(sample) == 5


def test_target_without_sidecar_is_not_complete(cfg):
    build(ExportMissingSha256())
    work = Path(cfg["workdir"])
    meta_path(work / "files_missing_sha256.json.gz").unlink()
    assert not ExportMissingSha256().complete()


def test_count_check_reports_a_mismatch(cfg, tmp_path):
    tsv = tmp_path / "file_hashes.tsv"
    # the export has 40 entities lacking sha256; the dump claims 41
    rows = [f"i{i}\tr{i}\t{i:040x}\t\t" for i in range(41)] + [f"j\tr\t{'f' * 40}\t{'a' * 64}\t{'b' * 32}"]
    tsv.write_text("\n".join(rows) + "\n")
    luigi.configuration.get_config().set("backfill", "file_hashes", str(tsv))
    assert build(CountMissingSha256()).status == luigi.LuigiStatusCode.SUCCESS
    result = json.loads(Path(cfg["workdir"], "files_missing_sha256.count_check.json").read_text())
    assert result["match"] is False
    assert result["export_missing_sha256"] == 40 and result["file_hashes_missing_sha256"] == 41


def run_luigi(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", *args, "--local-scheduler"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_failed_step_exits_non_zero_and_names_the_file(tmp_path):
    export = make_export(tmp_path / "export.json.gz", n=3000)
    data = export.read_bytes()
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(data[: len(data) // 2])
    proc = run_luigi(
        ["ExportMissingSha256", "--backfill-workdir", str(tmp_path / "w"), "--backfill-export", str(truncated)]
    )
    assert proc.returncode == 30, proc.stderr[-2000:]
    assert "truncated.json.gz" in proc.stderr
    assert not (tmp_path / "w" / "files_missing_sha256.json.gz").exists()


def test_status_cli_lists_targets_lines_and_counts(cfg, capsys):
    from pipeline.cli import main

    build(IngestRequestSample())
    rc = main(["status"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    marks = [line.split()[0] for line in lines if not line.startswith(" ")]
    # only the steps up to the sample were built: the later ones are not done, so not 0
    assert rc == 1 and "done" in marks and set(marks) != {"done"}
    export_line = next(line for line in lines if line.endswith("/files_missing_sha256.json.gz"))
    assert export_line.split()[:2] == ["done", "40"]
    sample_line = next(line for line in lines if line.endswith(".ingest_request.sample.json"))
    assert sample_line.split()[:2] == ["done", "10"]
    assert "has_sha256=20, in=61, out=40, rejects=1" in out
    assert "rejects_by_reason: invalid-json: 1" in out
