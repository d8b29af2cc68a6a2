"""Export filter vs the runbook's one-liners, on a synthetic 500k-line export.

    python bench/bench_export_filter.py [--lines 500000] [--repeat 5]

Compares `ExportMissingSha256`'s function with `zcat | rg -v '"sha256":' | pigz`
(the runbook) and the jq version. The shell variants do less: they neither
parse every line nor keep rejects, and rg also drops `"sha256": ""` entities
that lack a real hash; the table shows what that safety costs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_args, have, report, shell, synthetic_export, timed  # noqa: E402
from pipeline.steps.export_filter import filter_missing_sha256  # noqa: E402


def main() -> None:
    args = bench_args(repeat=5, lines=500_000)
    tmp = args.tmp
    export = synthetic_export(tmp / f"bench-export-{args.lines}.json.gz", args.lines)
    out, rej = tmp / "bench-out.json.gz", tmp / "bench-rej.json.gz"
    rows = [
        {
            "name": "pipeline filter_missing_sha256",
            "times": timed(lambda: filter_missing_sha256(str(export), str(out), str(rej)), args.repeat),
        }
    ]
    if have("rg", "pigz"):
        cmd = f"zcat {export} | rg -v '\"sha256\":' | pigz > {tmp}/bench-rg.json.gz"
        rows.append({"name": "zcat | rg -v | pigz (runbook)", "times": timed(shell(cmd), args.repeat)})
    if have("jq", "pigz"):
        cmd = f"zcat {export} | jq -c 'select(.sha256 == null)' | pigz > {tmp}/bench-jq.json.gz"
        rows.append({"name": "zcat | jq select | pigz", "times": timed(shell(cmd), max(1, args.repeat // 2))})
    report(
        "export_filter",
        rows,
        baseline="zcat | rg -v | pigz (runbook)" if have("rg", "pigz") else rows[0]["name"],
        extra={"lines": args.lines, "input_bytes": export.stat().st_size},
    )


if __name__ == "__main__":
    main()
