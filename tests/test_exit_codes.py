"""The luigi CLI's exit codes, as `[retcode]` in luigi.cfg sets them (the README lists them).

Cron jobs and operators tell outcomes apart by these codes; each test makes
one outcome happen for real (the luigi CLI in a subprocess on the sample
world) and checks the code and the line that says why.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def retcodes() -> dict[str, int]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "luigi.cfg")
    return {k: int(v) for k, v in cfg["retcode"].items()}


def luigi(work: Path, world: Path, *extra: str, task: str = "Backfill") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", task, "--local-scheduler",
           "--backfill-workdir", str(work),
           "--backfill-export", str(world / "file_export.json.gz"),
           "--backfill-archive", str(world / "collection"), "--backfill-shards", "2", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_codes_are_distinct_and_the_ones_the_readme_lists():
    codes = retcodes()
    assert codes == {"already_running": 0, "missing_data": 20, "not_run": 0, "task_failed": 30,
                     "scheduling_error": 35, "unhandled_exception": 40}
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    for name, code in codes.items():
        assert f"`{name}`" in section, name
        assert f"| {code} |" in section, name


def test_no_scheduler_is_one_line_within_seconds_saying_how_to_start_one(tmp_path):
    """The README's commands without --local-scheduler and no luigid listening: luigi itself
    retried for a minute and exited 40 with ten tracebacks."""
    from services import free_port

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    port = free_port()  # nothing listens there
    proc = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
                           "--scheduler-port", str(port), "--backfill-workdir", str(tmp_path / "w")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == retcodes()["scheduling_error"], proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"no luigi scheduler answers at http://127.0.0.1:{port}/" in lines[0]
    assert "`make luigid`" in lines[0] and "--local-scheduler" in lines[0]
    assert not (tmp_path / "w").exists()  # nothing was scheduled, nothing made


def test_success_is_0_and_a_rerun_is_0(world, finished_run):
    work, first = finished_run  # made with these settings (conftest)
    assert first.returncode == 0, first.stderr[-3000:]
    second = luigi(work, world, "--backfill-sample-size", "50")
    assert second.returncode == 0 and "Did not run any tasks" in second.stderr


def test_missing_input_is_missing_data(world, tmp_path):
    work = tmp_path / "work"
    proc = luigi(work, world, "--backfill-export", str(tmp_path / "no-such-export.json.gz"))
    assert proc.returncode == retcodes()["missing_data"], proc.stderr[-3000:]
    assert "missing external dependencies" in proc.stderr
    assert "no-such-export.json.gz" in proc.stderr.split("Execution Summary")[1]


def test_qa_gate_refusal_is_task_failed_and_no_shard_is_ingested(world, tmp_path):
    work = tmp_path / "work"
    # the sample world's sample succeeds at 0.949: a gate at 1.0 refuses the full ingest
    proc = luigi(work, world, "--backfill-sample-min-success", "1.0")
    assert proc.returncode == retcodes()["task_failed"], proc.stderr[-3000:]
    assert "sample QA gate: success rate 0.949" in proc.stderr
    assert (work / "files_missing_sha256.ingest_results.sample.json").exists()
    assert list(work.glob("ingest_results/*.json.gz")) == []


def test_a_failed_step_is_task_failed(world, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # the export step's target path is taken by a directory: publishing it fails
    (work / "files_missing_sha256.json.gz").mkdir()
    proc = luigi(work, world, task="ExportMissingSha256")
    assert proc.returncode == retcodes()["task_failed"], proc.stderr[-3000:]
    assert "failed    ExportMissingSha256(" in proc.stderr
    assert not (work / "files_missing_sha256.json.gz.meta.json").exists()


@pytest.mark.parametrize("option", ["--grobid-host"])
def test_a_failed_precondition_is_task_failed(world, tmp_path, option):
    from services import free_port

    work = tmp_path / "work"
    proc = luigi(work, world, option, f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == retcodes()["task_failed"], proc.stderr[-3000:]
    assert "PreconditionFailed: GrobidAlive:" in proc.stderr
    assert not work.exists() or not any(work.iterdir())


HOLD_LOCK = """
import sys, time
from pipeline.runlock import RunLock
with RunLock(sys.argv[1], "another importer (held by a test)"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_importer_is_refused_with_task_failed(world, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    journal_lock = work / "files_missing_sha256.import.journal.json.lock"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(journal_lock)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = luigi(work, world, "--backfill-sample-size", "50")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == retcodes()["task_failed"], proc.stderr[-3000:]
    assert "failed    ImportFileMeta(" in proc.stderr
    assert f"LockHeld: import journal {work}" in proc.stderr
    assert f"is in use by pid {holder.pid}" in proc.stderr and "wait for that run to finish" in proc.stderr
    assert not (work / "files_missing_sha256.import.counts.json").exists()
