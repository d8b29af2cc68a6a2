"""The one way a temporary file is named: `<final name>.tmp-<host>-<pid>-<start>`.

Why: a work directory can be shared by worker hosts (one luigid, storage every
host mounts). A name holding only the pid cannot say whose file it is: pid 4711
on another host (or in another PID namespace) is a different process, and a
sweep that judged it by this host's process table deleted a shard another host
was still writing. The host name and the process start time (clock ticks since
boot, as the journal owner records it) make the name say exactly which process
made it, so this host can tell its own dead processes' leftovers (pid gone, or
reused by a process that started later) from everything it must leave alone.
Every temporary file and scratch directory gets its name from `temp_suffix()`.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

# a host name as it appears in a file name: no `/`, nothing a shell would quote
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
# host names may hold `-`: the pid and start are the last two numbers before an SQLite suffix
TEMP_RE = re.compile(r"\.tmp-(?P<host>[A-Za-z0-9._-]+?)-(?P<pid>\d+)-(?P<start>\d+)"
                     r"(?:-wal|-shm|-journal)?$")
TEMP_GLOB = "*.tmp-*"


def process_start(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (Linux), None when unknown or gone.
    A zombie is gone: it has exited (a killed run's stream processes are zombies until reaped),
    only its exit status is left."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields follow the last ")"
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def host_name() -> str:
    """This host's name as temporary names carry it."""
    return _UNSAFE.sub("_", socket.gethostname()) or "unknown"


@dataclass(frozen=True)
class TempOwner:
    """The process a temporary name says made it (start 0: unknown when it was made)."""

    host: str
    pid: int
    start: int

    def is_mine(self) -> bool:
        """Made on this host (only then can its process be looked up here)."""
        return self.host == host_name()

    def is_running_here(self) -> bool:
        """A process of this host that is still running (same pid and start time)."""
        if not self.is_mine():
            return False
        start = process_start(self.pid)
        return start is not None and (self.start == 0 or start == self.start)


_suffix: tuple[int, str] | None = None  # (pid, suffix): a forked child computes its own


def temp_suffix() -> str:
    """`.tmp-<host>-<pid>-<start>` of this process."""
    global _suffix
    pid = os.getpid()
    if _suffix is None or _suffix[0] != pid:
        _suffix = (pid, f".tmp-{host_name()}-{pid}-{process_start(pid) or 0}")
    return _suffix[1]


def temp_name(path: str | os.PathLike) -> str:
    """The temporary name of `path` for this process (a string: callers wrap it as they need)."""
    return f"{os.fspath(path)}{temp_suffix()}"


def temp_owner(name: str) -> TempOwner | None:
    """Who made a temporary file, from its name; None for a name that is not one."""
    m = TEMP_RE.search(name)
    if not m:
        return None
    return TempOwner(m["host"], int(m["pid"]), int(m["start"]))
