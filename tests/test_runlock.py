"""Locks held by live processes; a dead process's lock and temp files are taken over / swept."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.runlock import (
    LockHeld,
    RunLock,
    is_alive,
    is_me,
    list_temp_files,
    me,
    remove_host_temp_files,
    sweep_temp_files,
)
from pipeline.tempnames import TempOwner, host_name, process_start, temp_name, temp_owner

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
        # at once: a waiting acquire would last the holder's 30 s
        assert time.monotonic() - t0 < 20
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


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_sweep_removes_only_temp_files_of_dead_processes(tmp_path):
    pid, here = _dead_pid(), host_name()
    keep_live = Path(temp_name(tmp_path / "x.json.gz"))
    gone = [tmp_path / f"x.json.gz.tmp-{here}-{pid}-1",
            tmp_path / f"catalog.sqlite.tmp-{here}-{pid}-1-wal",
            # this very pid, started at another time: a process that is gone, its pid reused
            tmp_path / f"y.json.gz.tmp-{here}-{os.getpid()}-{(me()['start'] or 0) + 1}"]
    final = tmp_path / "x.json.gz"
    for p in [keep_live, *gone, final]:
        p.write_text("x")
    removed = sweep_temp_files(tmp_path)
    assert sorted(removed) == sorted(map(str, gone))
    assert keep_live.exists() and final.exists()


def test_another_hosts_temporaries_are_never_judged_by_a_local_pid(tmp_path):
    """A shard another host is writing: its pid means nothing here (not running here, or
    running here as some other process), so the sweep leaves it; only `sweep --host` removes
    it, and `status` can list it with its host."""
    pid = _dead_pid()
    theirs = [tmp_path / f"shard-000-of-004.json.gz.tmp-worker-b.internal-{pid}-77",
              tmp_path / f".merge-parts-x1.tmp-worker-b.internal-{os.getpid()}-{me()['start']}"]
    for p in theirs:
        p.write_text("being written on worker-b")
    assert sweep_temp_files(tmp_path, recursive=True) == []
    assert all(p.exists() for p in theirs)
    listed = {p.name: o for p, o in list_temp_files(tmp_path)}
    assert listed[theirs[0].name] == TempOwner("worker-b.internal", pid, 77)
    assert not listed[theirs[1].name].is_running_here()
    assert sorted(remove_host_temp_files(tmp_path, "worker-b.internal")) == sorted(map(str, theirs))


def test_a_temporary_name_says_host_pid_and_start():
    name = os.path.basename(temp_name("/w/catalog.sqlite"))
    assert name == f"catalog.sqlite.tmp-{host_name()}-{os.getpid()}-{me()['start']}"
    assert temp_owner(name + "-wal") == TempOwner(host_name(), os.getpid(), me()["start"])
    assert temp_owner("a.json.tmp-h-5-6-77-88") == TempOwner("h-5-6", 77, 88)
    assert temp_owner("a.json.gz") is None and temp_owner("a.json.tmp-12345") is None


def test_a_lock_holder_with_our_pid_on_another_host_is_not_us(tmp_path, caplog):
    """The take-over line names another host's holder even when its pid is ours."""
    lock = tmp_path / "catalog.sqlite.lock"
    other = {**me(), "host": "worker-b.internal"}
    assert not is_me(other) and is_me(me())
    lock.write_text(json.dumps(other))
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        with RunLock(lock, "the test catalog"):
            pass
    assert f"from pid {os.getpid()} on worker-b.internal" in caplog.text


ORPHAN = """
import os, signal, sys, time
from pipeline.runlock import die_with_parent
parent = os.getpid()
armed_r, armed_w = os.pipe()
child = os.fork()
if child == 0:
    die_with_parent(parent)
    os.write(armed_w, b"1")  # the death signal is armed
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
os.read(armed_r, 1)  # wait until it is, then die
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


def test_an_import_owner_on_another_host_with_our_pid_is_another_live_run():
    """Recovery must leave alone the editgroups of an import on another host, even when its
    pid happens to be ours (every host numbers its own processes)."""
    from pipeline.importer.journal import ImportJournal

    assert ImportJournal.owner_is_live_other({**me(), "host": "worker-b.internal"})
    assert not ImportJournal.owner_is_live_other(me())


def test_a_process_that_exited_is_gone_while_still_a_zombie():
    """A killed run's stream processes stay zombies until someone reaps them; their journal
    owners must count as gone, or the rerun's recovery leaves their editgroups open."""
    child = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    owner = {"pid": child.pid, "host": socket.gethostname(), "start": process_start(child.pid)}
    assert owner["start"] is not None and is_alive(owner)
    child.stdin.close()  # cat ends; waitid with WNOWAIT sees that and leaves it unreaped
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] == "Z"
    assert process_start(child.pid) is None and not is_alive(owner)
    child.wait()
