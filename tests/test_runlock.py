"""Locks held by live processes; a dead process's lock and temp files are taken over / swept."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.runlock import LockHeld, RunLock, is_alive, me, sweep_temp_files

ROOT = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from pipeline.runlock import RunLock
with RunLock(sys.argv[1], "the test catalog"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lock: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_fails_at_once_naming_the_first(tmp_path):
    lock = tmp_path / "catalog.sqlite.lock"
    proc = _holder(lock, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockHeld) as err:
            RunLock(lock, "the test catalog").acquire()
        assert time.monotonic() - t0 < 2  # at once, no waiting
        assert f"pid {proc.pid} on " in str(err.value) and "the test catalog" in str(err.value)
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_is_taken_over_with_a_log_line(tmp_path, caplog):
    lock = tmp_path / "catalog.sqlite.lock"
    proc = _holder(lock, 30)
    proc.kill()  # SIGKILL: no cleanup ran, the lock file still names it
    proc.wait()
    assert json.loads(lock.read_text())["pid"] == proc.pid
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        with RunLock(lock, "the test catalog"):
            assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert f"from pid {proc.pid} on" in caplog.text and "no longer running" in caplog.text
    assert not lock.exists()  # released: no file names a holder


def test_liveness_tells_a_reused_pid_apart():
    owner = me()
    assert is_alive(owner)
    assert not is_alive({**owner, "start": (owner["start"] or 0) + 1})
    assert not is_alive(None)


def test_sweep_removes_only_temp_files_of_dead_processes(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    keep_live = tmp_path / f"x.json.gz.tmp-{os.getpid()}"
    gone = [tmp_path / f"x.json.gz.tmp-{dead.pid}", tmp_path / f"catalog.sqlite.tmp-{dead.pid}-wal"]
    final = tmp_path / "x.json.gz"
    for p in [keep_live, *gone, final]:
        p.write_text("x")
    removed = sweep_temp_files(tmp_path)
    assert sorted(removed) == sorted(map(str, gone))
    assert keep_live.exists() and final.exists()
