"""Named points where a process can be held, so a test can interleave two runs exactly.

Why: the races between two runs (two loads of one missing catalog, two
imports into one catalog) happen in a window of milliseconds; a test that
starts two processes and hopes they meet there proves nothing on a busy
machine. With `PIPELINE_PAUSE_DIR` set, a process reaching `pause_point(name)`
writes `<dir>/<name>.reached` (its pid) and waits until `<dir>/<name>.go`
exists; the test waits for the first file, does what it needs meanwhile,
then creates the second. Without the variable (every real run) it does
nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "PIPELINE_PAUSE_DIR"
# a test that never releases the point must not leave a process behind for ever
MAX_WAIT_SECONDS = 300.0


def pause_point(name: str, armed_by: str | None = None) -> None:
    """Hold here while a test says so (see the module docstring); a no-op otherwise.

    `armed_by`: a point many runs pass (every shard's) holds only when the test also created
    `<dir>/<armed_by>`, so tests pausing elsewhere never stop there."""
    directory = os.environ.get(PAUSE_ENV)
    if not directory:
        return
    base = Path(directory)
    if armed_by is not None and not (base / armed_by).exists():
        return
    reached, go = base / f"{name}.reached", base / f"{name}.go"
    reached.write_text(f"{os.getpid()}\n")
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"pause point {name}: {go} never appeared")
        time.sleep(0.02)
