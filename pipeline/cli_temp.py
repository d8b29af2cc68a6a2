"""`python -m pipeline sweep [--host NAME]` and the temporary files `status` lists.

Why: with several worker hosts on one work directory, a host can only judge its
own processes. A run removes what this host's dead processes left
(`pipeline.runlock.sweep_temp_files`); what another host left is never removed
by a run, since from here a file being written there looks exactly like one
left by a crash there. `status` lists those files by host, and an operator who
knows that host's run is over (or that the host is gone for good) removes them
with `sweep --host NAME`.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

from pipeline.runlock import list_temp_files, remove_host_temp_files
from pipeline.tempnames import host_name

SHOWN_PER_HOST = 10


def workdir() -> Path:
    from pipeline.tasks.run_identity import run_key

    return Path(run_key())


def leftover_lines(root: Path) -> list[str]:
    """`status`'s lines about temporary files: this host's dead processes' (the next step run
    here removes them) and every other host's (only `sweep --host` does). A live process's
    temporary file on this host is work in progress and not listed."""
    by_host: dict[str, list[str]] = defaultdict(list)
    for path, owner in list_temp_files(root):
        if not owner.is_running_here():
            by_host[owner.host].append(os.path.relpath(path, root))
    lines = []
    for host in sorted(by_host):
        names = by_host[host]
        if host == host_name():
            why = "left by processes that are gone; the next step run on this host removes them"
        else:
            why = (f"another host's: removed only by `python -m pipeline sweep --host {host}` "
                   "once no process of this run is left there")
        lines.append(f"temporary files of {host} ({len(names)}): {why}")
        lines += [f"{'':18}{n}" for n in names[:SHOWN_PER_HOST]]
        if len(names) > SHOWN_PER_HOST:
            lines.append(f"{'':18}... and {len(names) - SHOWN_PER_HOST} more")
    return lines


def cmd_sweep(args: argparse.Namespace) -> int:
    root = workdir()
    host = args.host or host_name()
    removed = remove_host_temp_files(root, host)
    for path in removed:
        print(os.path.relpath(path, root))
    print(f"removed {len(removed)} temporary file(s) of {host} under {root}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help="remove temporary files left by killed processes (this host's, "
                                     "or with --host another host's)")
    s.add_argument("--host", help="the host whose temporary files to remove (default: this one); "
                                  "all of them for another host: only once its run is over")
    s.set_defaults(func=cmd_sweep)
