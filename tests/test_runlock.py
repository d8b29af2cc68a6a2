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


ORPHAN = """
import os, signal, sys, time
from pipeline.runlock import die_with_parent
parent = os.getpid()
child = os.fork()
if child == 0:
    die_with_parent(parent)
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(0.5)  # the child has armed its death signal
os.kill(parent, signal.SIGKILL)
"""


def test_a_worker_process_dies_with_its_killed_parent():
    """A merge worker must not outlive a step killed with SIGKILL (it would write into a
    scratch directory that the next run sweeps)."""
    proc = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True,
                          timeout=30)
    child = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running(child):
        time.sleep(0.05)
    assert not running(child), f"worker {child} outlived its killed parent"


def running(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
