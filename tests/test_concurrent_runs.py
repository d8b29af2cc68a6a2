"""One importer per catalog and journal, one maker per target, and reruns sweep dead temp files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from catalog_world import entity, file_meta, ident_of, write_lines

from pipeline.catalog.export import load_export
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.importer import import_file_meta
from pipeline.importer.journal import OPEN, ImportJournal
from pipeline.runlock import process_start
from pipeline.tempnames import host_name

ROOT = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from pipeline.runlock import RunLock
with RunLock(sys.argv[1], "held by a test"):
    print("held", flush=True)
    time.sleep(60)
"""


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    return env


def _hold(lock: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def _catalog(tmp_path: Path, n: int = 30) -> tuple[Path, Path]:
    export = write_lines(tmp_path / "export.json", [entity(i) for i in range(n)])
    fm = write_lines(tmp_path / "fm.json", [file_meta(i) for i in range(n)])
    return export, fm


def test_second_importer_of_a_catalog_fails_at_once_with_its_exit_code(tmp_path):
    export, fm = _catalog(tmp_path)
    cat = tmp_path / "catalog.sqlite"
    holder = _hold(Path(f"{cat}.lock"))  # a first importer, still running
    try:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pipeline", "catalog", "import", str(fm),
                               "--catalog", str(cat), "--seed", str(export),
                               "--journal", str(tmp_path / "journal.json")],
                              cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
        assert time.monotonic() - t0 < 30
    finally:
        _stop(holder)
    assert proc.returncode == 10, proc.stderr
    assert f"in use by pid {holder.pid} on" in proc.stderr and "Traceback" not in proc.stderr
    assert not cat.exists()  # not even loaded: the load too happens under the catalog's lock


def test_lock_of_a_killed_importer_is_taken_over(tmp_path):
    export, fm = _catalog(tmp_path)
    cat = tmp_path / "catalog.sqlite"
    _stop(_hold(Path(f"{cat}.lock")))  # SIGKILLed while holding it
    proc = subprocess.run([sys.executable, "-m", "pipeline", "catalog", "import", str(fm),
                           "--catalog", str(cat), "--seed", str(export),
                           "--journal", str(tmp_path / "journal.json")],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "'update': 30" in proc.stdout


def test_recovery_never_touches_a_live_runs_editgroup(tmp_path):
    """Two importers without a shared lock (another host's lock directory, say): the second
    one's recovery must not take the first one's open editgroup for a killed run's."""
    export, fm = _catalog(tmp_path, n=5)
    load_export(tmp_path / "c.sqlite", export)
    db = SqliteCatalog(tmp_path / "c.sqlite")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # the live run created an editgroup and put one edit in it
        eg = db.create_editgroup("live run", {})
        db.update_file(eg, ident_of(0), {**db.get_file(ident_of(0)), "size": 1})
        journal = ImportJournal(tmp_path / "journal.json")
        journal.owner = {"pid": live.pid, "host": os.uname().nodename,
                         "start": process_start(live.pid), "since": "now"}
        journal.record(OPEN, eg, db.name)
        result = import_file_meta(fm, db, journal_path=tmp_path / "journal.json", batch_size=10)
        assert result.recovery.live_left_alone == [eg]
        assert result.recovery.resumed == [] and result.recovery.abandoned == {}
        assert db.get_editgroup(eg).get("changelog_index") is None  # not accepted by us
    finally:
        _stop(live)
        db.close()


def _luigi(work: Path, world: Path, task: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", task, "--local-scheduler",
         "--backfill-workdir", str(work), "--backfill-export", str(world / "file_export.json.gz"),
         "--backfill-archive", str(world / "collection")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)


def test_a_target_being_made_by_another_run_is_not_made_twice(tmp_path, world):
    work = tmp_path / "work"
    holder = _hold(work / ".locks" / "files_missing_sha256.json.gz.lock")
    try:
        proc = _luigi(work, world, "ExportMissingSha256")
    finally:
        _stop(holder)
    assert proc.returncode == 30, proc.stderr[-2000:]
    assert f"in use by pid {holder.pid}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (work / "files_missing_sha256.json.gz").exists()


def test_rerun_sweeps_temp_files_of_dead_processes_only(tmp_path, world):
    work = tmp_path / "work"
    (work / "ingest_results").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = host_name()
    gone = [work / f"files_missing_sha256.json.gz.tmp-{here}-{dead.pid}-1",
            work / "ingest_results" / f"shard-000-of-004.json.gz.tmp-{here}-{dead.pid}-1",
            work / f"catalog.sqlite.tmp-{here}-{dead.pid}-1-wal"]
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = process_start(live.pid)
    kept = [work / f"files_missing_sha256.rejects.json.gz.tmp-{here}-{live.pid}-{start}",
            work / f"files_missing_sha256.json.gz.tmp-other-host-{dead.pid}-1"]
    try:
        for p in [*gone, *kept]:
            p.write_text("partial")
        (work / f".uniq-runs-x1.tmp-{here}-{dead.pid}-1").mkdir()
        proc = _luigi(work, world, "ExportMissingSha256")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)
        assert not (work / f".uniq-runs-x1.tmp-{here}-{dead.pid}-1").exists()
        assert json.loads((work / "files_missing_sha256.json.gz.meta.json").read_text())["counts"]
    finally:
        _stop(live)


def test_an_input_remade_by_another_run_meanwhile_is_never_published_over(tmp_path, monkeypatch):
    """Run B remakes the export filter's output while run A's request step reads it: A must not
    publish requests whose sidecar names B's file as their input."""
    import luigi
    from luigi_config import config_options

    from pipeline import tasks
    from pipeline.steps import ingest_request

    export = write_lines(tmp_path / "export.json", [entity(i) for i in range(20)])
    archive = tmp_path / "collection"  # empty, but a collection: the run's archive check passes
    (archive / "archive").mkdir(parents=True)
    (archive / "indexes").mkdir()
    (archive / "indexes" / "index.cdxj").write_text("")
    with config_options("backfill", {"workdir": str(tmp_path / "work"), "export": str(export),
                                      "archive": str(archive), "file_hashes": ""}):
        assert luigi.build([tasks.ExportMissingSha256()], local_scheduler=True, log_level="WARNING")
        real = ingest_request.build_requests

        def remade_meanwhile(entities_path, *a, **kw):
            counts = real(entities_path, *a, **kw)
            Path(entities_path).write_bytes(Path(entities_path).read_bytes())  # new mtime: B's file
            return counts

        monkeypatch.setattr(tasks.prepare, "build_requests", remade_meanwhile)
        res = luigi.build([tasks.IngestRequests()], local_scheduler=True, detailed_summary=True,
                          log_level="WARNING")
    assert res.status != luigi.LuigiStatusCode.SUCCESS
    work = tmp_path / "work"
    assert not (work / "files_missing_sha256.ingest_request.json.gz.meta.json").exists()
