"""The one base class of the errors an operator fixes, and the full disk as one of them.

Why: a bad setting, a damaged input, a service that is down, another run
holding a lock or a full disk is not a bug: the operator needs one line
saying what is wrong with which setting, file or service, not a traceback.
Every such error derives from `OperatorError`; the luigi log filter
(`pipeline.tasks.base`) and the operator CLI (`pipeline.cli`) print it as one line
and let everything else keep its traceback. No hand-kept tuple of error
types: a new operator-facing error only has to derive from this class.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator


class OperatorError(Exception):
    """Something the operator fixes (a setting, an input, a service, the disk); the message
    says what and where, and is printed without a traceback."""


class DiskFull(OperatorError):
    """A write failed because its filesystem is full (ENOSPC, or SQLite's "disk is full")."""

    @classmethod
    def at(cls, path: str | os.PathLike) -> DiskFull:
        """The error for a write under `path`, naming the path and the space left there."""
        path = os.fspath(path)
        return cls(f"no space left on device while writing {path} ({free_space(path)} once this "
                   "step's temporary files were removed); free some space or point [backfill] "
                   "workdir at a larger filesystem, then rerun")


@contextlib.contextmanager
def disk_full_reported(path: str | os.PathLike) -> Iterator[None]:
    """Turn a full disk met inside the block into `DiskFull` naming the file (the one the
    error names, else `path`) and the space left; every other error passes unchanged."""
    try:
        yield
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise DiskFull.at(getattr(exc, "filename", None) or path) from None
        raise


def is_disk_full(exc: BaseException) -> bool:
    """A full disk, however it was raised: OSError(ENOSPC/EDQUOT), or SQLite's own error."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def free_space(path: str | os.PathLike) -> str:
    """`12.0 KiB free of 1.0 MiB` on the filesystem holding `path` (or its nearest existing
    parent); `free space unknown` when it cannot be measured."""
    where = os.path.abspath(os.fspath(path))
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return "free space unknown"
    return f"{_size(usage.free)} free of {_size(usage.total)}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
