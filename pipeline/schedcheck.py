"""Is the central scheduler there? Checked once, before the first task is scheduled.

Why: the README's commands without `--local-scheduler` talk to luigid at
`[core] scheduler_host:scheduler_port`. With none listening, luigi retried every
call to it for a minute and exited 40 (`unhandled_exception`) with ten
tracebacks, none of which said what to do. One connection attempt, bounded by
`[core] rpc_connect_timeout`, answers the question before any task is added;
when nobody answers, the process exits with `[retcode] scheduling_error` and one
line naming the address and both ways forward. Only the luigi command line is
checked (`luigi.build(...)` callers choose their scheduler in code), and only
once per process.
"""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

_checked: set[str] = set()
CONNECT_TIMEOUT = 3.0  # seconds, unless [core] rpc_connect_timeout says otherwise


def scheduler_url(core) -> str:
    """The URL luigi's RemoteScheduler will use (as `luigi.interface` builds it)."""
    if core.scheduler_url:
        return core.scheduler_url
    return f"http://{core.scheduler_host}:{core.scheduler_port}/"


def unreachable(url: str, timeout: float) -> str | None:
    """Why nothing accepts a connection at `url`'s host and port; None when something does."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=timeout).close()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def check_scheduler() -> None:
    """Exit at once, in one line, when the luigi command line's scheduler cannot be reached."""
    import luigi.interface
    from luigi.cmdline_parser import CmdlineParser
    from luigi.configuration import get_config
    from luigi.retcodes import retcode

    from pipeline.configmemo import remembered

    if CmdlineParser.get_instance() is None:
        return  # not the luigi command line
    core = remembered(luigi.interface.core)  # asked at every task's creation
    if core.local_scheduler:
        return
    url = scheduler_url(core)
    if url in _checked:
        return
    timeout = get_config().getfloat("core", "rpc_connect_timeout", CONNECT_TIMEOUT)
    why = unreachable(url, timeout)
    if why is None:
        _checked.add(url)
        return
    print(f"no luigi scheduler answers at {url} ({why}): start one with `make luigid` "
          f"(or point [core] scheduler_host/scheduler_port at yours), or run this process "
          f"alone with --local-scheduler", file=sys.stderr, flush=True)
    raise SystemExit(retcode().scheduling_error)
