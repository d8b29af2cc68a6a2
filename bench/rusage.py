"""Run a command; write the peak RSS and CPU time of its process tree, measured from here.

Why: on Linux a child's `ru_maxrss` starts at the RSS of the process it was
forked from (the high-water mark of the address space it leaves at exec is
kept), so every command that the bench process spawned directly was floored
at the bench's own RSS (about 65 MB): the anchors' small pipelines looked as
big as our steps. This small process spawns the command instead and reports
`RUSAGE_CHILDREN` of itself, which covers the command and everything it ran.

Usage: python bench/rusage.py OUT.json CMD [ARG ...]   (exit status: the command's)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def main(argv: list[str]) -> int:
    out, cmd = argv[0], argv[1:]
    returncode = subprocess.call(cmd)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        json.dump({"rss_mb": usage.ru_maxrss / 1024,
                   "cpu_s": usage.ru_utime + usage.ru_stime}, f)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
