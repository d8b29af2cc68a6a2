"""Which gzip writer the targets use: isal igzip vs zlib vs pigz-python vs the pigz binary.

    python bench/bench_gzip.py [--lines 500000] [--repeat 5]

Writes the same JSON lines (the synthetic export, decompressed) as a gzip
target. pigz-python was named in the original design; SERVICES.md measured that
it only compresses whole files in memory and hangs on an empty file, so it is
timed here on the file it needs, for the record.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isal import igzip  # noqa: E402

from bench.common import bench_args, have, report, synthetic_export, timed  # noqa: E402


def write_with(opener, path: Path, lines: list[bytes]) -> None:
    with opener(path, "wb") as f:
        for line in lines:
            f.write(line)


def main() -> None:
    args = bench_args(repeat=5, lines=500_000)
    tmp = args.tmp
    export = synthetic_export(tmp / f"bench-export-{args.lines}.json.gz", args.lines)
    with igzip.open(export, "rb") as f:
        lines = f.readlines()
    raw = tmp / "bench-raw.json"
    raw.write_bytes(b"".join(lines))
    out = tmp / "bench-gz.json.gz"

    rows = [
        {"name": "isal igzip (chosen)", "times": timed(lambda: write_with(igzip.open, out, lines), args.repeat)},
        {"name": "stdlib gzip level 9", "times": timed(lambda: write_with(gzip.open, out, lines), args.repeat)},
        {
            "name": "stdlib gzip level 6",
            "times": timed(lambda: write_with(lambda p, m: gzip.open(p, m, compresslevel=6), out, lines), args.repeat),
        },
    ]
    if have("pigz"):
        rows.append(
            {
                "name": "pigz binary (file -> file)",
                "times": timed(lambda: subprocess.run(["pigz", "-k", "-f", str(raw)], check=True), args.repeat),
            }
        )
    try:
        import pigz_python  # the `bench` extra

        def run_pigz_python() -> None:
            pigz_python.compress_file(str(raw))  # writes <raw>.gz beside it

        rows.append({"name": "pigz-python compress_file", "times": timed(run_pigz_python, max(1, args.repeat // 2))})
    except (ImportError, AttributeError):
        pass
    sizes = {"raw_bytes": raw.stat().st_size, "isal_bytes": None}
    write_with(igzip.open, out, lines)
    sizes["isal_bytes"] = out.stat().st_size
    report("gzip_write", rows, baseline="pigz binary (file -> file)" if have("pigz") else rows[0]["name"], extra=sizes)
    for p in (raw, Path(str(raw) + ".gz"), out):
        if p.exists():
            p.unlink()


if __name__ == "__main__":
    main()
