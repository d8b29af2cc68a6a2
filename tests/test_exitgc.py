"""A pipeline process leaves the interpreter's last collection out at exit, and only that.

Checked on a real interpreter's exit: a reference cycle made garbage while the collector
is off is collected at exit (its finaliser writes to a file) unless a step ran
`skip_exit_collection` in that process; objects freed by reference counting are freed
either way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = textwrap.dedent("""
    import atexit, gc, os, sys
    from pipeline.exitgc import skip_exit_collection

    gc.disable()  # the cycle below stays uncollected until the interpreter's exit
    FD = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)

    class Noted:
        def __init__(self, name):
            self.name = name
        def __del__(self, write=os.write, fd=FD):
            write(fd, self.name.encode() + b"\\n")

    cycle = Noted("cycle")
    cycle.me = cycle
    del cycle
    plain = Noted("plain")
    del plain  # freed here, by reference counting
    if sys.argv[2] == "skip":
        before = atexit._ncallbacks()
        skip_exit_collection()
        skip_exit_collection()
        assert atexit._ncallbacks() == before + 1, "registered once however often asked"
""")


@pytest.mark.parametrize("mode,freed", [("skip", ["plain"]), ("keep", ["plain", "cycle"])])
def test_the_exit_collection_is_skipped_only_when_asked(tmp_path, mode, freed):
    notes = tmp_path / "freed.txt"
    notes.write_text("")
    subprocess.run([sys.executable, "-c", PROGRAM, str(notes), mode], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert notes.read_text().split() == freed
