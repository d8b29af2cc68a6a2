"""Running the pipeline the way operators do: one luigid, many worker processes, many runs.

Every test here starts a real `luigid` on a free 127.0.0.1 port and runs the
luigi CLI in subprocesses against it, then reads the scheduler's JSON API and
the work directories (sidecars, logs) to check what happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.jsonio import read_json

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.services


def worker_cmd(port: int, work: Path, world: Path, *extra: str, task: str = "Backfill") -> list[str]:
    return [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", task,
            "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port),
            "--backfill-workdir", str(work),
            "--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"),
            "--backfill-sample-size", "50", *extra]


def env() -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("LUIGI_CONFIG_PATH", None)
    return e


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT)


def wait_all(procs: list[subprocess.Popen], logs: list[Path]) -> None:
    for proc, log in zip(procs, logs, strict=True):
        rc = proc.wait(timeout=300)
        assert rc == 0, log.read_text()[-3000:]


def test_two_runs_with_different_workdirs_on_one_luigid_both_complete(luigid, world, tmp_path):
    works = [tmp_path / "run-a", tmp_path / "run-b"]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start(worker_cmd(luigid.port, w, world, "--backfill-shards", "2"), log)
             for w, log in zip(works, logs, strict=True)]
    wait_all(procs, logs)
    done = luigid.tasks("DONE")
    backfills = {tid: t for tid, t in done.items() if t["name"] == "Backfill"}
    assert len(backfills) == 2
    assert {t["params"]["run_dir"] for t in backfills.values()} == {str(w) for w in works}
    shards = [t for t in done.values() if t["name"] == "IngestShard"]
    assert len(shards) == 4  # two shards in each run, none taken for the other run's
    for work, log in zip(works, logs, strict=True):
        assert (work / "report.html").exists()
        counts = read_json(work / "files_missing_sha256.import.counts.json")
        assert counts["update"] > 0
        assert "Did not run any tasks" not in log.read_text()
    assert luigid.tasks("FAILED") == {}


def test_a_rerun_resolves_to_the_same_task_ids(luigid, world, tmp_path):
    work = tmp_path / "run"
    first = subprocess.run(worker_cmd(luigid.port, work, world, "--backfill-shards", "2"),
                           cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    ids = set(luigid.tasks("DONE"))
    # the same run started from another directory, with the work directory given relatively
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    rel = os.path.relpath(work, other_cwd)
    cmd = worker_cmd(luigid.port, Path(rel), world, "--backfill-shards", "2")
    second = subprocess.run(cmd, cwd=other_cwd, env=env() | {"LUIGI_CONFIG_PATH": str(ROOT / "luigi.cfg")},
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Did not run any tasks" in second.stderr
    assert set(luigid.tasks("DONE")) == ids
