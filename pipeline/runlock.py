"""Locks held by a live process, and who holds them: one writer per catalog, per target.

Why: Luigi's own lock only stops an identical command line, so two runs that
differ by any option (or two `catalog import` commands) could import into one
catalog at once and edit entities twice. An exclusive `flock` on a lock file
is released by the kernel when its process dies, however it dies, so a lock
of a killed run never blocks the next one; the file also says who holds it
(pid, host, start time), for the error message and for the log line when a
dead process's lock is taken over. Temporary files follow the same idea: a
process removes the temporaries (`pipeline.tempnames`) of its own host's
processes that are gone; another host's are only listed (`python -m pipeline
status`) and removed by an operator who knows that host's run is over
(`python -m pipeline sweep --host NAME`): no pid says anything about a
process on another host.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import OperatorError
from pipeline.fswalk import walk_names
from pipeline.tempnames import TEMP_GLOB, TempOwner, host_name, process_start, temp_owner

log = logging.getLogger(__name__)


class LockHeld(OperatorError):
    """Another live process holds the lock: this run must not go on."""


def me() -> dict[str, Any]:
    """This process as a lock or journal owner: pid, host, start (ticks) and a readable time."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start": process_start(pid),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def is_alive(owner: dict[str, Any] | None) -> bool:
    """Whether `owner` (from `me()`) is a running process. An owner on another host counts as
    alive (it cannot be checked from here); a reused pid (other start time) does not."""
    if not owner or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    start = process_start(owner["pid"])
    return start is not None and (owner.get("start") is None or start == owner["start"])


def is_me(owner: dict[str, Any] | None) -> bool:
    """Whether `owner` is this very process: the same pid alone is not (another host, another
    PID namespace, or a pid reused since)."""
    mine = me()
    return bool(owner) and all(owner.get(k) == mine[k] for k in ("pid", "host", "start"))


def describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "an unknown process"
    return f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('since')}"


class RunLock:
    """An exclusive, non-blocking lock on `path` (a small JSON file naming the holder).

    `acquire()` raises `LockHeld` at once when a live process holds it; a lock
    file left by a dead process is taken over with a log line.
    """

    def __init__(self, path: str | os.PathLike, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_owner(fd)
                os.close(fd)
                raise LockHeld(f"{self.what} is in use by {describe(holder)} (lock {self.path}); "
                               "wait for that run to finish: two at once would edit entities "
                               "twice") from None
            # the holder we waited on may have removed the file as it released it: a lock on
            # a file no longer at the path locks nothing, so start again on the new one
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_owner(fd)
        if previous and not is_me(previous):
            log.warning("taking over the lock of %s from %s, which is no longer running (%s)",
                        self.what, describe(previous), self.path)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me(), sort_keys=True) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then let go: a lock file left behind names a killed holder."""
        if self._fd is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class FileLock:
    """A blocking exclusive `flock` on `path` for a moment (`with FileLock(path): ...`), across
    processes and across threads (each hold opens its own descriptor): a holder killed
    mid-hold lets go with its process."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._held = threading.local()

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._held.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._held.fd)  # the flock goes with the descriptor
        self._held.fd = None


def _read_owner(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        owner = json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def list_temp_files(directory: str | os.PathLike, recursive: bool = True) -> list[tuple[Path, TempOwner]]:
    """Every temporary file and scratch directory under `directory` with the process its name
    names (names of another form are left out), listed before anything is removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in _listed(directory, recursive):
        owner = temp_owner(path.name)
        if owner is not None:
            found.append((path, owner))
    return found


def sweep_temp_files(directory: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Remove the temporary files and directories (and SQLite's `-wal`/`-shm` beside them) of
    this host's processes that are gone.

    Why: a kill -9, a timeout or a full disk leaves the temporary file a step
    was writing; no final path is ever one (they are renamed only when
    complete), but they pile up. A temporary file of a live process (another
    run, or this one) is left alone, and so is every other host's: its
    process cannot be looked up here (`list_temp_files`, `remove_host_temp_files`).
    Returns the removed paths.
    """
    return _remove(directory, recursive, lambda o: o.is_mine() and not o.is_running_here())


def remove_host_temp_files(directory: str | os.PathLike, host: str) -> list[str]:
    """Remove every temporary of `host` under `directory` (the operator's `sweep --host`): for
    this host only those of processes that are gone; another host's all, on the operator's word
    that no process of that run is left there."""
    if host == host_name():
        return sweep_temp_files(directory, recursive=True)
    return _remove(directory, True, lambda o: o.host == host)


def _remove(directory: str | os.PathLike, recursive: bool,
            doomed: Callable[[TempOwner], bool]) -> list[str]:
    removed = []
    for path, owner in list_temp_files(directory, recursive):
        if not doomed(owner) or not (path.is_file() or path.is_dir()):
            continue
        try:
            if path.is_dir():  # a step's scratch directory (the external sort's runs)
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(str(path))
    if removed:
        log.info("removed %d temporary file(s) left by processes that are gone: %s", len(removed),
                 ", ".join(sorted(os.path.basename(p) for p in removed)[:10]))
    return removed


def _listed(directory: Path, recursive: bool) -> list[Path]:
    """The temporary names under `directory`, listed before anything is removed (another
    run may remove its own scratch directory meanwhile: what vanished is not listed)."""
    if recursive:
        return walk_names(directory, TEMP_GLOB)
    try:
        return sorted(directory.glob(TEMP_GLOB))
    except FileNotFoundError:
        return []


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when its parent does (Linux `PR_SET_PDEATHSIG`).

    Why: a step's worker processes (the merge's) are forked children; if the
    step is killed with SIGKILL they would live on, keep writing into a
    scratch directory that the next run sweeps, and hold CPU. On other
    systems this does nothing. Used as a process pool's initializer.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
