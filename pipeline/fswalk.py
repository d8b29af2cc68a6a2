"""Listing a directory tree that other processes are changing, without failing on it.

Why: a work directory is written by running steps while something else looks
at it (a step's sweep of its host's dead temporary files, the report scanning for
sidecars, a test watching a run). `Path.rglob` raises `FileNotFoundError` when a
directory it is about to list is removed meanwhile (a merge's scratch
directory `.merge-parts-*.tmp-HOST-PID-START`); `os.walk` skips what it cannot list. An
entry that vanishes while it is walked was not there: it is simply not listed.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path


def walk_names(root: str | os.PathLike, pattern: str = "*", *, files_only: bool = False) -> list[Path]:
    """Every file (and, unless `files_only`, directory) under `root` whose name matches the
    glob `pattern`, sorted; entries removed while the walk runs are left out."""
    found = []
    for folder, dirs, files in os.walk(root):
        names = files if files_only else [*dirs, *files]
        found += [Path(folder, n) for n in names if fnmatch.fnmatchcase(n, pattern)]
    return sorted(found)
