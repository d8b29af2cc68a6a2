"""The run manifest: a work directory remembers its run's settings (docs/targets.md).

Real luigi command lines (local scheduler) on the sample world: a rerun without the
flags is a no-op, a changed shard count is refused (exit 35) unless
`--backfill-change-settings`, and `status` judges the run by its own settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.jsonio import read_json

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("LUIGI_CONFIG_PATH", None)
    return e


def luigi_run(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
                           "--local-scheduler", "--backfill-workdir", str(work), *args],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)


def status(work: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "status", "--brief", "--workdir", str(work)],
                          cwd=cwd, env=env(), capture_output=True, text=True, timeout=300)


def flags(world: Path, shards: int = 2) -> list[str]:
    return ["--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"),
            "--backfill-sample-size", "50", "--backfill-shards", str(shards)]


def imported(work: Path) -> dict:
    return read_json(work / "files_missing_sha256.import.counts.json")


def finished(work: Path, *args: str) -> None:
    proc = luigi_run(work, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def three_shards(world, tmp_path_factory) -> Path:
    """A fresh run made with flags (3 shards, a Kafka env), read by two tests and never changed:
    `status` judges it, and a run changed from 2 to 3 shards must import what it imported."""
    work = tmp_path_factory.mktemp("three-shards") / "run"
    finished(work, *flags(world, shards=3), "--kafka-env", "qa")
    return work


def test_rerun_without_flags_takes_them_from_the_manifest(world, finished_run):
    work, _ = finished_run  # made with flags(world) (conftest)
    recorded = read_json(work / "run.manifest.json")["settings"]
    assert recorded["backfill.shards"] == 2
    assert recorded["backfill.export"] == str(world / "file_export.json.gz")
    assert "FATCAT_API_AUTH_TOKEN" not in (work / "run.manifest.json").read_text()
    proc = luigi_run(work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Did not run any tasks" in proc.stderr, proc.stderr[-3000:]


def test_changed_shards_refused_then_accepted_equal_a_fresh_run(world, tmp_path, three_shards):
    work = tmp_path / "run"
    finished(work, *flags(world, shards=2))
    proc = luigi_run(work, "--backfill-shards", "3")
    assert proc.returncode == 35, proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if "[backfill] shards: 2 -> 3" in x)
    assert "IngestShard x3" in line and "MergeFileMeta" in line and "ImportFileMeta" in line
    assert not list((work / "ingest_results").glob("shard-*-of-003*"))  # nothing ran

    proc = luigi_run(work, "--backfill-shards", "3", "--backfill-change-settings")
    assert proc.returncode == 0, proc.stderr[-3000:]
    shards = sorted(p.name for p in (work / "ingest_results").glob("shard-*.json.gz"))
    assert shards == [f"shard-00{i}-of-003.json.gz" for i in range(3)]
    aside = list((work / "superseded").glob("*/ingest_results/shard-*-of-002.json.gz"))
    assert len(aside) == 2
    assert read_json(work / "run.manifest.json")["settings"]["backfill.shards"] == 3

    assert imported(work) == imported(three_shards)  # a fresh run made with 3 shards
    assert imported(work)["update"] > 0


def test_status_of_a_run_made_with_flags_is_done_from_anywhere(three_shards, tmp_path):
    work = three_shards
    for cwd in (ROOT, tmp_path):
        proc = status(work, cwd)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        marks = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
        assert marks and set(marks) == {"done"}, proc.stdout


def test_status_says_why_a_step_is_stale(world, tmp_path):
    export = tmp_path / "export.json.gz"
    export.write_bytes((world / "file_export.json.gz").read_bytes())
    work = tmp_path / "run"
    finished(work, *flags(world)[2:], "--backfill-export", str(export))
    sample = work / "files_missing_sha256.ingest_request.sample.json"
    sample.write_text(sample.read_text() + "\n")
    export.write_bytes(export.read_bytes() + (world / "file_export.json.gz").read_bytes())
    proc = status(work)
    assert proc.returncode == 1
    rows = proc.stdout.splitlines()

    def why(target: Path) -> list[str]:
        at = next(i for i, r in enumerate(rows) if r.startswith("stale") and r.endswith(str(target)))
        return [r.strip() for r in rows[at + 1:at + 4]]

    assert f"why: {sample} is not the file its sidecar recorded" in why(sample), proc.stdout
    assert f"why: input {export} changed since the step read it" in why(
        work / "files_missing_sha256.json.gz"), proc.stdout
