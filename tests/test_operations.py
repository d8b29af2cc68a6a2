"""Running the pipeline the way operators do: one luigid, many worker processes, many runs.

Every test here starts a real `luigid` on a free 127.0.0.1 port and runs the
luigi CLI in subprocesses against it, then reads the scheduler's JSON API and
the work directories (sidecars, logs) to check what happened.
"""

from __future__ import annotations

import os
import re
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


# luigid ignores a worker saying "pending" for a task it saw done within this many seconds
# (10 by default); an hour makes "right after the last run" hold however slow the machine.
LONG_COOLDOWN = "[scheduler]\nstable_done_cooldown_secs = 3600\n"


def test_a_changed_settings_run_right_after_the_last_one_completes(world, tmp_path):
    from luigid_service import run_luigid

    work = tmp_path / "run"
    with run_luigid(tmp_path / "luigid", LONG_COOLDOWN) as luigid:
        first = subprocess.run(worker_cmd(luigid.port, work, world, "--backfill-shards", "2"),
                               cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr[-3000:]
        first_ids = set(luigid.tasks("DONE"))
        changed = subprocess.run(
            worker_cmd(luigid.port, work, world, "--backfill-shards", "3", "--backfill-change-settings"),
            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
        assert changed.returncode == 0, changed.stderr[-3000:]
        assert "Unfulfilled dependency" not in changed.stderr
        shards = sorted(p.name for p in (work / "ingest_results").glob("shard-*.json.gz"))
        assert shards == [f"shard-00{i}-of-003.json.gz" for i in range(3)]
        for step in ("files_missing_sha256.file_meta.json.gz", "report.json"):
            assert (work / step).exists() and (work / f"{step}.meta.json").exists(), step
        report = read_json(work / "report.json")
        assert report["outcome"]["partial"] is False
        done = luigid.tasks("DONE")
        assert luigid.tasks("FAILED") == {}
        # the changed run's steps are tasks of their own, none taken for the first run's
        reports = [tid for tid, t in done.items() if t["name"] == "BackfillReport"]
        assert len(reports) == 2 and len([r for r in reports if r in first_ids]) == 1
        # and a rerun with the changed settings, left to the manifest, is the same tasks again
        again = subprocess.run(worker_cmd(luigid.port, work, world), cwd=ROOT, env=env(),
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "Did not run any tasks" in again.stderr
        assert set(luigid.tasks("DONE")) == set(done)


NEVER_RUN = {"InputFile", "ArchiveReachable", "CatalogWritable", "GrobidAlive", "BrokerReachable"}

# Several worker processes on one host need --no-lock (luigi's per-host lock refuses a second
# identical command line; on separate hosts there is nothing to lift).
SHARED_WORKER = ("--no-lock", "--worker-keep-alive", "--worker-max-keep-alive-idle-duration", "20 seconds",
                 "--worker-wait-interval", "0.2", "--worker-wait-jitter", "0.3")


def test_two_worker_processes_share_one_workdir_and_run_each_shard_once(luigid, world, tmp_path):
    work = tmp_path / "run"
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    procs = [start(worker_cmd(luigid.port, work, world, "--backfill-shards", "6", "--workers", "2",
                              "--backfill-progress-seconds", "0.2", *SHARED_WORKER), log)
             for log in logs]
    codes = [p.wait(timeout=300) for p in procs]
    texts = [log.read_text() for log in logs]
    # the process that ran the run's last step says so to cron with 0; the other one left
    # the rest to it without a failure, also 0 ([retcode] already_running = not_run = 0)
    finisher = [i for i, t in enumerate(texts) if " done      Backfill(" in t]
    assert len(finisher) == 1, [t[-2000:] for t in texts]
    assert codes[finisher[0]] == 0, (codes, texts[finisher[0]][-3000:])
    assert codes == [0, 0], [t[-2000:] for t in texts]
    assert not any(re.search(r"\* \d+ failed", t) for t in texts)
    done = luigid.tasks("DONE")
    assert luigid.tasks("FAILED") == {} and luigid.tasks("PENDING") == {}
    assert luigid.tasks("RUNNING") == {}
    names = sorted(t["name"] for t in done.values())
    assert names.count("IngestShard") == 6 and names.count("Backfill") == 1
    # every task that ran says how it ended; the steps' messages keep their final counts
    for task_id, task in done.items():
        if task["name"] in NEVER_RUN:
            continue  # checked (a file exists, a service answers) while scheduling, never run
        message = luigid.status_message(task_id)
        assert message and message.startswith("done: "), (task["name"], message)
        assert luigid.progress(task_id) == 100
    shard_ids = [tid for tid, t in done.items() if t["name"] == "IngestShard"]
    for tid in shard_ids:
        shard = int(done[tid]["params"]["shard"])
        total = read_json(work / f"ingest_results/shard-{shard:03d}-of-006.json.gz.meta.json")
        assert f"in={total['counts']['in']}" in luigid.status_message(tid)
        assert f"/{total['counts']['in']} requests (100.0%)" in luigid.status_message(tid)
    # each shard ran exactly once, in one of the two processes
    for shard in range(6):
        started = [line for text in texts for line in text.splitlines()
                   if " running   IngestShard(" in line and f"shard={shard}, shards=6)" in line]
        assert len(started) == 1, started
    ran_by = [sum(" running   IngestShard(" in line for line in text.splitlines()) for text in texts]
    assert sum(ran_by) == 6
    # and the progress lines reached the terminal
    assert any("IngestShard 00" in t and "requests (" in t for t in texts)
    # the run as a whole is complete: a rerun with the same options finds nothing to do
    rerun = subprocess.run(worker_cmd(luigid.port, work, world, "--backfill-shards", "6"),
                           cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "Did not run any tasks" in rerun.stderr
